"""log_mel against an independent numpy implementation of the BigVGAN 22 kHz / 80-band recipe.

The reference below uses only numpy: its own Slaney mel scale and Slaney-normalised
triangular filterbank (the formulas of Slaney's Auditory Toolbox, as librosa implements
them), reflect padding, a periodic Hann window and np.fft.rfft.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from avflow_cli import constants as K
from avflow_cli.audio.mel import log_mel, num_mel_frames
from avflow_cli.data.prep import log_mel_long

F_SP = 200.0 / 3  # Slaney: linear below 1 kHz, 200/3 Hz per mel
MIN_LOG_HZ = 1000.0
MIN_LOG_MEL = MIN_LOG_HZ / F_SP  # 15
LOGSTEP = np.log(6.4) / 27.0  # log-spaced above 1 kHz


def hz_to_mel(f: np.ndarray) -> np.ndarray:
    f = np.asarray(f, dtype=np.float64)
    return np.where(f < MIN_LOG_HZ, f / F_SP, MIN_LOG_MEL + np.log(np.maximum(f, 1e-10) / MIN_LOG_HZ) / LOGSTEP)


def mel_to_hz(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    return np.where(m < MIN_LOG_MEL, m * F_SP, MIN_LOG_HZ * np.exp(LOGSTEP * (m - MIN_LOG_MEL)))


def slaney_filterbank(sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """(n_mels, n_fft // 2 + 1) triangles between consecutive mel points, area-normalised."""
    freqs = np.linspace(0, sr / 2, n_fft // 2 + 1)
    points = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))  # (n_mels + 2,)
    lower, centre, upper = points[:-2, None], points[1:-1, None], points[2:, None]
    rising = (freqs[None] - lower) / (centre - lower)
    falling = (upper - freqs[None]) / (upper - centre)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    return weights * (2.0 / (points[2:] - points[:-2]))[:, None]


def reference_log_mel(wav: np.ndarray) -> np.ndarray:
    pad = (K.N_FFT - K.HOP_LENGTH) // 2
    x = np.pad(wav.astype(np.float64), (pad, pad), mode="reflect")
    frames = 1 + (len(x) - K.N_FFT) // K.HOP_LENGTH
    idx = np.arange(K.N_FFT)[None] + K.HOP_LENGTH * np.arange(frames)[:, None]  # (T, n_fft)
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(K.WIN_LENGTH) / K.WIN_LENGTH)  # periodic Hann
    spec = np.fft.rfft(x[idx] * window, axis=1)  # (T, 513)
    mag = np.sqrt(spec.real**2 + spec.imag**2 + 1e-9)
    fb = slaney_filterbank(K.SAMPLE_RATE, K.N_FFT, K.N_MELS, K.MEL_FMIN, K.MEL_FMAX)
    return np.log(np.maximum(mag @ fb.T, K.MEL_LOG_FLOOR))  # (T, 80)


def test_filterbank_matches_reference() -> None:
    from avflow_cli.audio.mel import mel_basis

    ours = mel_basis().numpy()
    ref = slaney_filterbank(K.SAMPLE_RATE, K.N_FFT, K.N_MELS, K.MEL_FMIN, K.MEL_FMAX)
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-7)


def test_log_mel_matches_numpy_recipe() -> None:
    rng = np.random.default_rng(0)
    t = np.arange(K.SAMPLE_RATE) / K.SAMPLE_RATE
    wav = (0.3 * np.sin(2 * np.pi * 220 * t) + 0.2 * np.sin(2 * np.pi * 3100 * t) + 0.05 * rng.normal(size=t.size)).astype(np.float32)
    ours = log_mel(wav).numpy()
    ref = reference_log_mel(wav)
    assert ours.shape == ref.shape == (len(wav) // K.HOP_LENGTH, K.N_MELS)
    # float32 STFT vs float64: compare where the mel has energy, relative to its dynamic range
    np.testing.assert_allclose(ours, ref, atol=2e-3)


@pytest.mark.parametrize("n", [256, 1000, 22050, 22050 * 2 + 17, 4096])
def test_frame_count_is_n_over_hop(n: int) -> None:
    wav = np.random.default_rng(n).normal(size=n).astype(np.float32) * 0.1
    assert log_mel(wav).shape == (n // K.HOP_LENGTH, K.N_MELS)
    assert num_mel_frames(n) == n // K.HOP_LENGTH


def test_fps_is_sample_rate_over_hop() -> None:
    assert K.FPS == pytest.approx(86.1328125)
    seconds = 3.0
    frames = log_mel(np.zeros(int(seconds * K.SAMPLE_RATE), np.float32)).shape[0]
    assert frames == int(seconds * K.FPS)


def test_chunked_mel_equals_one_shot() -> None:
    wav = np.random.default_rng(1).normal(size=K.SAMPLE_RATE * 2 + 300).astype(np.float32) * 0.1
    np.testing.assert_allclose(log_mel_long(wav, chunk_frames=37), log_mel(wav).numpy(), atol=1e-4)


def test_mel_tables_cached_under_inference_mode_still_serve_autograd() -> None:
    """The cached filterbank/window must not be inference tensors (distillation backpropagates through log_mel)."""
    from avflow_cli.audio.mel import _mel_basis, _window

    _mel_basis.cache_clear()
    _window.cache_clear()
    with torch.inference_mode():
        log_mel(torch.zeros(4096))
    wav = torch.randn(4096, requires_grad=True)
    log_mel(wav).sum().backward()
    assert wav.grad is not None and torch.isfinite(wav.grad).all()
