"""Griffin-Lim, the weight-free last resort: NNLS mel inversion and frame-aligned reconstruction."""

from __future__ import annotations

import numpy as np
import torch

from avflow_cli.audio.griffinlim import GriffinLimVocoder, mel_to_linear
from avflow_cli.audio.mel import log_mel, mel_basis
from avflow_cli.audio.vocoder import load_vocoder


def _harmonic(seconds: float = 0.6, f0: float = 180.0) -> torch.Tensor:
    t = torch.arange(int(22050 * seconds)) / 22050
    return sum(0.3 / k * torch.sin(2 * torch.pi * k * f0 * t) for k in range(1, 6))  # (N,)


def test_mel_to_linear_is_nonnegative_and_reproduces_the_mel() -> None:
    mel = log_mel(_harmonic())[None]  # (1, T, 80)
    lin = mel_to_linear(mel)  # (1, 513, T)
    assert lin.shape == (1, 513, mel.shape[1]) and (lin >= 0).all()
    back = torch.log(torch.clamp(mel_basis() @ lin, min=1e-5)).transpose(1, 2)  # (1, T, 80)
    strong = mel > mel.max() - 5
    plain_pinv = torch.linalg.pinv(mel_basis()) @ torch.exp(mel).transpose(1, 2)
    assert (plain_pinv < 0).any()  # why the non-negative fit is needed
    assert (back - mel)[strong].abs().mean() < 0.15


def test_griffinlim_output_is_aligned_and_close_in_mel() -> None:
    x = _harmonic()
    mel = log_mel(x)[None]  # (1, T, 80)
    voc = load_vocoder("griffinlim")
    assert isinstance(voc, GriffinLimVocoder) and voc.name == "griffinlim" and voc.sample_rate == 22050
    y = voc(mel)
    assert y.shape == (1, mel.shape[1] * 256)
    torch.testing.assert_close(voc(mel), y)  # seeded phases: deterministic
    m2 = log_mel(y[0])
    strong = mel[0] > mel.max() - 5
    assert (m2 - mel[0])[strong].abs().mean() < 0.6
    # frame alignment: the energy envelope follows the input (a burst in the middle stays there)
    burst = torch.zeros(22050)
    burst[8000:14000] = _harmonic(6000 / 22050)
    env = voc(log_mel(burst)[None])[0].abs().numpy()
    inside, outside = env[8500:13500].mean(), np.r_[env[:7000], env[15000:]].mean()
    assert inside > 10 * outside


def test_griffinlim_has_no_time_shift() -> None:
    """Our frames start 384 samples before t·256 (no centering); the output must not lag the input."""
    x = torch.zeros(86 * 256)
    x[10000:10400] = torch.sin(torch.arange(400) * 0.3) * torch.hann_window(400)  # a short blip
    y = GriffinLimVocoder(n_iter=64)(log_mel(x)[None])[0]
    box = np.ones(128) / 128
    ex, ey = np.convolve(x.abs().numpy(), box, "same"), np.convolve(y.abs().numpy(), box, "same")
    lags = np.arange(-400, 401, 4)
    best = lags[np.argmax([np.dot(ex, np.roll(ey, int(lag))) for lag in lags])]
    assert abs(best) <= 16, best  # without the 128-sample correction it lands at ±128
