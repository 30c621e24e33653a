"""MCD with DTW: identical inputs give 0, a time-stretched copy stays near 0, the constant is standard."""

from __future__ import annotations

import numpy as np
import pytest

from avflow_cli.metrics.mcd import MCD_CONSTANT, dtw_path, mcd_dtw, mel_cepstrum


def _speechlike(frames: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(frames // 10 + 1, 80)).cumsum(axis=1) * 0.2 - 4
    return np.repeat(base, 10, axis=0)[:frames]  # (T, 80) piecewise-constant "phones"


def test_constant_is_10_sqrt2_over_ln10() -> None:
    assert MCD_CONSTANT == pytest.approx(6.141851, rel=1e-6)


def test_identical_inputs_give_zero_and_stretch_is_absorbed_by_dtw() -> None:
    mel = _speechlike(200)
    assert mcd_dtw(mel, mel) == 0.0
    stretched = np.repeat(mel, 2, axis=0)  # twice as slow: DTW aligns every frame to its copy
    assert mcd_dtw(stretched, mel) == pytest.approx(0.0, abs=1e-9)
    assert mcd_dtw(mel, _speechlike(200, seed=1)) > 1.0


def test_c0_is_excluded_gain_change_costs_nothing() -> None:
    mel = _speechlike(100)
    assert mcd_dtw(mel + 2.0, mel) == pytest.approx(0.0, abs=1e-9)  # a gain only moves c0


def test_cepstrum_inverts_to_log_spectrum() -> None:
    mel = _speechlike(5)
    c = mel_cepstrum(mel, order=79)  # all coefficients
    k = np.arange(80)
    recon = c[:, :1] + 2 * np.sum(c[:, 1:, None] * np.cos(np.pi * np.arange(1, 80)[:, None] * (k + 0.5) / 80), 1)
    np.testing.assert_allclose(recon, mel, atol=1e-9)


def test_dtw_path_hand_case() -> None:
    cost = np.array([[0, 1, 1], [1, 0, 1], [1, 1, 0], [1, 1, 0]], float)
    pi, pj = dtw_path(cost)
    assert list(zip(pi.tolist(), pj.tolist())) == [(0, 0), (1, 1), (2, 2), (3, 2)]
