"""Normalisation: constant channels, the one std floor shared with the shard index, the waveform scale."""

from __future__ import annotations

import numpy as np
import torch

from avflow_cli import constants as K
from avflow_cli.data.index import RunningStats
from avflow_cli.models.config import avflow_preset
from avflow_cli.models.normalize import RELEASE_MEL_MEAN, RELEASE_MEL_STD, Normalizer


def _token_stats(rng: np.random.Generator) -> RunningStats:
    """Training tokens whose last channel (the demo's "Z") never changes."""
    tokens = rng.normal(0.0, 2.0, size=(2000, 29))
    tokens[:, -1] = -20.0
    stats = RunningStats()
    stats.add(tokens)
    return stats


def test_channel_constant_in_training_stays_quiet_at_inference() -> None:
    stats = _token_stats(np.random.default_rng(0)).finalize()
    norm = Normalizer("stats", {"tokens": stats.arrays()})
    x = np.full((4, 29), 0.0, np.float32)
    x[:, -1] = -20.0 + np.array([1e-3, -1e-3, 0.05, -0.1])  # text-to-tokens' tiny deviations
    y = norm.normalize("tokens", x)
    assert np.abs(y[:, -1]).max() <= 1e-2, y[:, -1]  # not amplified to 10..1000 sigma
    np.testing.assert_allclose(norm.denormalize("tokens", y)[:, -1], -20.0)  # the constant comes back
    assert np.abs(y[:, :-1]).max() < 1.0  # ordinary channels are ordinary z-scores
    yt = norm.normalize("tokens", torch.from_numpy(x))
    np.testing.assert_allclose(yt.numpy(), y, atol=1e-6)


def test_index_and_normalizer_share_one_floor() -> None:
    """The shard index keeps a positive std for constant channels, and that std reads as constant."""
    stats = _token_stats(np.random.default_rng(1)).finalize()
    std = np.asarray(stats.std)
    assert std[-1] > 0 and std[-1] >= 1e-3 * np.median(std[:-1]) * 0.99
    old_style = Normalizer("stats", {"tokens": (np.asarray(stats.mean), np.r_[std[:-1], 1e-5])})  # an older index.json
    for norm in (Normalizer("stats", {"tokens": stats.arrays()}), old_style):
        assert norm.normalize("tokens", np.full((1, 29), -19.99, np.float32))[0, -1] == 0.0


def test_release_mel_normalisation_divides_the_waveform_by_1_1() -> None:
    """normalize(log-mel of w) equals the release's (log-mel of w/1.1 + 5.5366) / 2.1161."""
    from avflow_cli.audio.mel import log_mel

    rng = np.random.default_rng(0)
    t = np.arange(K.SAMPLE_RATE // 2) / K.SAMPLE_RATE
    wav = (0.5 * np.sin(2 * np.pi * 220 * t) * np.hanning(len(t)) + 0.01 * rng.normal(size=len(t))).astype(np.float32)
    ours = log_mel(wav).numpy()
    theirs = (log_mel(wav / 1.1).numpy() - RELEASE_MEL_MEAN) / RELEASE_MEL_STD
    norm = Normalizer.for_config(avflow_preset("release")[0])
    np.testing.assert_allclose(norm.normalize("mel", ours), theirs, atol=2e-4)
    back = norm.denormalize("mel", norm.normalize("mel", ours))  # log-mel of w again: no ×1.1 needed after the vocoder
    np.testing.assert_allclose(back, ours, atol=1e-4)
    stats = Normalizer("stats", {"mel": (np.full(80, -5.0), np.full(80, 2.0))})
    np.testing.assert_allclose(stats.normalize("mel", ours), (ours + 5.0) / 2.0, rtol=1e-6)  # scale 1: unchanged
