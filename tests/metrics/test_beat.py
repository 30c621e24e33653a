"""Beat Align Score: shifted beat sequences give known scores; beats come from onsets and minima."""

from __future__ import annotations

import numpy as np
import pytest

from avflow_cli.constants import FPS
from avflow_cli.metrics.beat import (
    BEAT_SIGMA_S,
    audio_beats,
    beat_align_score,
    face_velocity,
    head_velocity,
    motion_beats,
    onset_strength,
)


def test_identical_beats_score_one_and_shift_scores_gaussian() -> None:
    beats = np.array([20, 60, 100, 140])
    assert beat_align_score(beats, beats) == 1.0
    shift = 3  # frames
    sigma = BEAT_SIGMA_S * FPS  # 0.05 s = 4.31 frames
    expected = np.exp(-(shift**2) / (2 * sigma**2))
    assert beat_align_score(beats, beats + shift) == pytest.approx(expected)
    # in the paper's units: sigma = 3 frames at 60 fps, so a 3-frame shift at 60 fps scores exp(-1/2)
    assert beat_align_score(beats, beats + 3, fps=60.0) == pytest.approx(np.exp(-0.5))


def test_score_averages_over_motion_beats_with_nearest_audio_beat() -> None:
    audio = np.array([10, 50])
    motion = np.array([10, 12, 90])  # distances 0, 2, 40
    sigma = 2.0
    expected = np.mean(np.exp(-np.array([0, 4, 1600]) / (2 * sigma**2)))
    assert beat_align_score(audio, motion, fps=1.0, sigma_s=sigma) == pytest.approx(expected)
    assert beat_align_score(audio, np.array([], int)) == 0.0
    assert beat_align_score(np.array([], int), motion) == 0.0


def test_motion_beats_are_velocity_minima() -> None:
    t = np.arange(400)
    period = 50  # frames
    face = np.stack([np.cos(2 * np.pi * t / period), np.sin(2 * np.pi * t / period) * 0], 1)
    v = face_velocity(face)  # |sin| shaped: minima where cos peaks/troughs
    beats = motion_beats(v)
    assert len(beats) >= 6
    assert np.all(np.min(np.abs(beats[:, None] % (period / 2) - np.array([0, period / 2])[None]), 1) <= 1)


def test_head_velocity_combines_rotation_and_translation() -> None:
    pose = np.zeros((3, 7))
    pose[:, 0] = 1.0
    pose[:, 4] = [0.0, 5.0, 5.0]  # translate 5 mm, then stand still
    np.testing.assert_allclose(head_velocity(pose), [5.0, 5.0, 0.0])


def test_onsets_of_bursts_become_audio_beats() -> None:
    frames = 300
    log_mel = np.full((frames, 80), np.log(1e-5))
    onsets = [30, 110, 200]
    for o in onsets:
        log_mel[o : o + 20] = 0.0  # loud burst
    env = onset_strength(log_mel)
    assert set(np.argsort(env)[-3:]) == set(onsets)
    np.testing.assert_array_equal(audio_beats(log_mel), onsets)


def test_local_minima_match_scipy_argrelextrema() -> None:
    from scipy.signal import argrelextrema

    from avflow_cli.metrics.beat import strict_local_minima

    x = np.random.default_rng(0).normal(size=500).cumsum()
    x[100:110] = x[100]  # a plateau is not a strict minimum
    for order in (1, 3, 14):
        np.testing.assert_array_equal(strict_local_minima(x, order), argrelextrema(x, np.less, order=order)[0])
