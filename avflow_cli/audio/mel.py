"""The BigVGAN 22 kHz / 80-band log-mel spectrogram (docs/ARCHITECTURE.md §1), the model's audio stream.

Recipe: reflect-pad (n_fft - hop) / 2 on both sides, STFT (n_fft 1024, hop 256, periodic Hann
1024, no centering), magnitude sqrt(re² + im² + 1e-9), Slaney mel basis (80 bands, 0-8000 Hz,
Slaney-normalised), natural log of the mel clamped at 1e-5. N samples give N // 256 frames, so
frames land exactly at ``FPS`` = 22050 / 256 Hz.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
import torchaudio.functional as AF

from avflow_cli.constants import (
    HOP_LENGTH,
    MEL_FMAX,
    MEL_FMIN,
    MEL_LOG_FLOOR,
    MEL_PAD,
    N_FFT,
    N_MELS,
    SAMPLE_RATE,
    WIN_LENGTH,
)


@lru_cache(maxsize=8)
@torch.inference_mode(False)  # cached for every later caller: never an inference tensor autograd would refuse
def _mel_basis(device: str) -> torch.Tensor:
    """Slaney mel filterbank (N_MELS, N_FFT // 2 + 1), librosa-equivalent."""
    fb = AF.melscale_fbanks(
        n_freqs=N_FFT // 2 + 1,
        f_min=MEL_FMIN,
        f_max=MEL_FMAX,
        n_mels=N_MELS,
        sample_rate=SAMPLE_RATE,
        norm="slaney",
        mel_scale="slaney",
    )  # (n_freqs, n_mels)
    return fb.T.contiguous().to(device)


@lru_cache(maxsize=8)
@torch.inference_mode(False)
def _window(device: str) -> torch.Tensor:
    return torch.hann_window(WIN_LENGTH, periodic=True, device=device)


def mel_basis(device: str | torch.device = "cpu") -> torch.Tensor:
    """The mel filterbank as used here, shape (N_MELS, N_FFT // 2 + 1)."""
    return _mel_basis(str(device))


def log_mel(wav: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Log-mel of 22 050 Hz audio.

    shape: (N,) -> (T, 80) or (B, N) -> (B, T, 80), with T = N // HOP_LENGTH.
    """
    x = torch.as_tensor(wav, dtype=torch.float32)
    squeeze = x.ndim == 1
    if squeeze:
        x = x[None]  # (B, N)
    if x.shape[-1] < HOP_LENGTH:
        raise ValueError(f"audio too short for one mel frame: {x.shape[-1]} samples < {HOP_LENGTH}")
    device = str(x.device)
    pad_mode = "reflect" if x.shape[-1] > MEL_PAD else "constant"
    x = F.pad(x[:, None], (MEL_PAD, MEL_PAD), mode=pad_mode)[:, 0]  # (B, N + 2·pad)
    spec = torch.stft(
        x,
        n_fft=N_FFT,
        hop_length=HOP_LENGTH,
        win_length=WIN_LENGTH,
        window=_window(device),
        center=False,
        onesided=True,
        return_complex=True,
    )  # (B, n_freqs, T)
    mag = torch.sqrt(spec.real.square() + spec.imag.square() + 1e-9)  # (B, n_freqs, T)
    mel = torch.matmul(_mel_basis(device), mag)  # (B, 80, T)
    out = torch.log(torch.clamp(mel, min=MEL_LOG_FLOOR)).transpose(1, 2)  # (B, T, 80)
    return out[0] if squeeze else out


def num_mel_frames(num_samples: int) -> int:
    """Frames ``log_mel`` returns for ``num_samples`` samples at SAMPLE_RATE."""
    return (num_samples + 2 * MEL_PAD - N_FFT) // HOP_LENGTH + 1
