"""Random windows: deterministic by step, sharded by rank, padded short clips, dims checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import pytest

from avflow_cli.data.dataset import (
    AVFlowTransform,
    FixedWindows,
    RandomWindows,
    WindowReader,
    check_avflow_dims,
)
from avflow_cli.data.schema import ShardIndex
from avflow_cli.errors import AvflowError
from avflow_cli.models.config import AVFlowConfig
from avflow_cli.models.normalize import Normalizer, model_streams


def _setup(shards: Path, frames: int, **cfg_kw):
    index = ShardIndex.load(shards)
    cfg = AVFlowConfig(face_dim=index.dims["face"], **cfg_kw)
    norm = Normalizer.from_index(index, model_streams(cfg))
    tf = AVFlowTransform(cfg, norm)
    return index, cfg, tf, WindowReader(shards, index.split("train"), tf.streams(), frames)


def test_windows_are_a_function_of_step_and_rank(synthetic_shards: Path) -> None:
    index, cfg, tf, reader = _setup(synthetic_shards, 64)
    a = RandomWindows(reader, 4, seed=1, transform=tf)
    b = RandomWindows(reader, 4, seed=1, transform=tf)
    assert a.windows(7) == b.windows(7) and a.windows(7) != a.windows(8)
    batch = a[7]
    assert batch["x"].shape == (4, 64, cfg.x_dim) and batch["cond"].shape == (4, 64, 29) and batch["valid"].shape == (4, 64)
    r0 = RandomWindows(reader, 2, seed=1, transform=tf, rank=0, world=2).windows(3)
    r1 = RandomWindows(reader, 2, seed=1, transform=tf, rank=1, world=2).windows(3)
    assert r0 + r1 == RandomWindows(reader, 4, seed=1, transform=tf).windows(3)  # ranks split one global draw


def test_short_clips_are_padded_and_masked(synthetic_shards: Path) -> None:
    index, cfg, tf, reader = _setup(synthetic_shards, 500)  # clips have 400 frames
    ex = reader.read(0, 0)
    assert ex["mel"].shape == (500, 80)
    assert ex["valid"][:400].all() and not ex["valid"][400:].any()
    assert np.all(ex["mel"][400:] == 0)
    assert len(FixedWindows(reader, 3, tf)) == 3


def test_dims_are_checked(synthetic_shards: Path) -> None:
    index = ShardIndex.load(synthetic_shards)
    with pytest.raises(AvflowError, match="face has 16 dims but the config expects 256"):
        check_avflow_dims(index, AVFlowConfig(face_dim=256), synthetic_shards)
    with pytest.raises(AvflowError, match="no 'p_tokens' stream"):
        check_avflow_dims(index, AVFlowConfig(face_dim=16, participant_tokens=True), synthetic_shards)


def test_dyadic_streams_join_cond(synthetic_dyadic_shards: Path) -> None:
    index, cfg, tf, reader = _setup(synthetic_dyadic_shards, 32, participant_tokens=True, participant_visual_dim=56)
    check_avflow_dims(index, cfg, synthetic_dyadic_shards)
    assert tf(reader.read(0, 5))["cond"].shape == (32, 29 + 29 + 56)


def test_worker_processes_give_the_same_batches(synthetic_shards: Path) -> None:
    from avflow_cli.data.dataset import batches

    index, cfg, tf, reader = _setup(synthetic_shards, 48)
    reader.read(0, 0)  # the parent holds an open handle: workers must open their own
    ds = RandomWindows(reader, 2, seed=3, transform=tf)
    direct = [ds[s]["x"] for s in range(5, 8)]
    with_workers = [b["x"] for b in batches(ds, 5, 8, num_workers=2)]
    for a, b in zip(direct, with_workers, strict=True):
        assert torch.equal(a, b)


def _raw_example(frames: int, face_dim: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "face": rng.normal(size=(frames, face_dim)).astype(np.float32),
        "head": rng.normal(size=(frames, 8)).astype(np.float32),
        "mel": rng.normal(-5.0, 2.0, size=(frames, 80)).astype(np.float32),
        "tokens": rng.normal(size=(frames, 29)).astype(np.float32),
        "valid": np.ones(frames, bool),
        "frame_mask": np.ones(frames, bool),
    }


def test_untracked_frames_keep_their_speech(synthetic_shards: Path) -> None:
    """Face/head are missing where tracking failed; the mel there is real speech and stays."""
    index, cfg, tf, reader = _setup(synthetic_shards, 40)
    ex = _raw_example(40, cfg.face_dim)
    ex["valid"][10:20] = False  # face untracked, audio fine
    out = tf(ex)
    mel = out["x"][:, -80:]
    np.testing.assert_allclose(mel[10:20], tf.norm.normalize("mel", ex["mel"][10:20]), rtol=1e-6)
    assert np.all(out["x"][10:20, : cfg.visual_dim] == 0)  # missing streams: neutral, and masked
    assert out["frame_mask"].all() and not out["valid"][10:20].any() and out["valid"][:10].all()


def test_padding_is_zero_in_normalised_space(synthetic_shards: Path) -> None:
    """Padded frames are 0 after normalisation (not raw zeros z-scored to thousands of sigma)."""
    index, cfg, tf, reader = _setup(synthetic_shards, 500)  # clips have 400 frames
    out = tf(reader.read(0, 0))
    assert out["frame_mask"][:400].all() and not out["frame_mask"][400:].any()
    assert not out["valid"][400:].any()
    assert np.all(out["cond"][400:] == 0) and np.all(out["x"][400:] == 0)
    assert np.abs(out["cond"][:400]).max() < 50  # real frames are ordinary z-scores


def test_validation_windows_stay_inside_their_clips(synthetic_shards: Path) -> None:
    """Clips at least a window long give windows that end inside the clip and cover all of it."""
    index, cfg, tf, reader = _setup(synthetic_shards, 250)  # clips have 400 frames
    val = FixedWindows(reader, 100, tf)
    for ci, clip in enumerate(reader.clips):
        starts = [s for c, s in val.items if c == ci]
        assert all(s + 250 <= clip.frames for s in starts), starts
        covered = np.zeros(clip.frames, bool)
        for s in starts:
            covered[s : s + 250] = True
        assert covered.all()
    assert all(val[i]["frame_mask"].all() for i in range(len(val)))
