"""Lip/smile F1 against hand-computed confusion counts, and the pluggable face decoders."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from avflow_cli.errors import AvflowError, InputFileError
from avflow_cli.metrics.face_decoder import linear_decoder, load_mouth_decoder
from avflow_cli.metrics.lipsync import event_counts, f1_lips, f1_smiles, lip_closures


def test_known_closures_give_known_f1() -> None:
    # truth closed at frames 2,3,4,8 ; generated closed at 3,4,5,9 -> TP 2 (3,4), FP 2 (5,9), FN 2 (2,8)
    truth = np.ones(10)
    truth[[2, 3, 4, 8]] = 0.1
    gen = np.ones(10)
    gen[[3, 4, 5, 9]] = 0.1
    counts = event_counts(lip_closures(gen, 0.5), lip_closures(truth, 0.5))
    assert (counts.tp, counts.fp, counts.fn, counts.tn) == (2, 2, 2, 4)
    assert f1_lips(gen, truth, 0.5) == pytest.approx(2 * 2 / (2 * 2 + 2 + 2))  # 0.5


def test_smiles_use_greater_than_and_perfect_match_is_one() -> None:
    corner = np.array([0.0, 1.0, 2.0, 3.0, 0.5])
    assert f1_smiles(corner, corner, 1.5) == 1.0
    assert f1_smiles(corner, corner[::-1], 1.5) == pytest.approx(2 * 1 / (2 * 1 + 1 + 1))  # overlap at frame 2 only


def test_counts_pool_across_clips_and_no_events_is_nan() -> None:
    a = event_counts(np.array([1, 0], bool), np.array([1, 0], bool))
    b = event_counts(np.array([0, 0], bool), np.array([1, 0], bool))
    assert (a + b).f1 == pytest.approx(2 / 3)
    assert np.isnan(event_counts(np.zeros(5, bool), np.zeros(5, bool)).f1)


def test_linear_decoder_npz_with_thresholds(tmp_path) -> None:
    W = np.zeros((4, 2), np.float32)
    W[0, 0], W[1, 1] = 1.0, 2.0
    np.savez(tmp_path / "dec.npz", W=W, b=np.array([0.5, 0.0]), lip_closed_threshold=0.6, smile_threshold=1.0)
    dec = load_mouth_decoder(tmp_path / "dec.npz")
    codes = np.array([[0.0, 0, 0, 0], [1.0, 1.0, 0, 0]], np.float32)
    np.testing.assert_allclose(dec.distances(codes), [[0.5, 0.0], [1.5, 2.0]])
    assert (dec.lip_closed_threshold, dec.smile_threshold) == (0.6, 1.0)
    assert dec.with_thresholds(None, 3.0).smile_threshold == 3.0
    with pytest.raises(AvflowError, match="dims"):
        dec.distances(np.zeros((2, 5), np.float32))


def test_torchscript_decoder(tmp_path) -> None:
    lin = torch.nn.Linear(3, 2)
    torch.jit.script(lin).save(str(tmp_path / "dec.pt"))
    dec = load_mouth_decoder(tmp_path / "dec.pt")
    codes = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    expected = lin(torch.from_numpy(codes)).detach().numpy()
    np.testing.assert_allclose(dec.distances(codes), expected, rtol=1e-5)


def test_bad_decoder_files(tmp_path) -> None:
    with pytest.raises(InputFileError, match="not found"):
        load_mouth_decoder(tmp_path / "missing.npz")
    (tmp_path / "dec.txt").write_text("x")
    with pytest.raises(InputFileError, match="unknown face decoder format"):
        load_mouth_decoder(tmp_path / "dec.txt")
    with pytest.raises(AvflowError):
        linear_decoder(np.zeros((3, 3)), np.zeros(2))
