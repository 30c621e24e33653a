"""Griffin-Lim: the vocoder of last resort, needing no weights at all.

Natural-log mel (our recipe, docs/ARCHITECTURE.md §1) → mel magnitude → linear magnitude by a non-negative
least-squares fit through the mel filterbank (pseudo-inverse start, then multiplicative NNLS
updates) → phase by torchaudio's fast Griffin-Lim. Bins above ``MEL_FMAX`` carry no mel energy
and stay silent. Quality is clearly below a neural vocoder; it exists so synthesis never fails
for lack of a checkpoint.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
import torchaudio.functional as AF

from avflow_cli.audio.mel import mel_basis
from avflow_cli.constants import HOP_LENGTH, MEL_PAD, N_FFT, N_MELS, SAMPLE_RATE, WIN_LENGTH

GL_ITERS = 32
GL_MOMENTUM = 0.99
NNLS_ITERS = 20
# Our frames start (n_fft - hop)/2 samples before t·hop (no centering); torch's iSTFT centres
# frame t at t·hop, so the waveform it returns is early by this many samples.
FRAME_SHIFT = N_FFT // 2 - MEL_PAD  # 128


def mel_to_linear(mel: torch.Tensor, iters: int = NNLS_ITERS) -> torch.Tensor:
    """Linear magnitude (B, N_FFT//2+1, T) ≥ 0 whose mel projection best matches ``mel``.

    shape: mel (B, T, 80) natural-log → (B, 513, T)
    """
    m = torch.exp(mel.float()).transpose(1, 2)  # (B, 80, T) mel magnitude
    basis = mel_basis(m.device)  # (80, 513)
    lin = torch.linalg.pinv(basis).matmul(m).clamp_min(1e-6)  # (B, 513, T)
    bt_m = basis.T.matmul(m)  # (B, 513, T)
    gram = basis.T.matmul(basis)  # (513, 513)
    for _ in range(iters):  # Lee-Seung multiplicative updates keep lin ≥ 0 and lower ‖M lin − m‖²
        lin = lin * bt_m / gram.matmul(lin).clamp_min(1e-10)
    return lin


class GriffinLimVocoder:
    """Callable mel (B, T, 80) → waveform (B, T · 256) by Griffin-Lim phase reconstruction."""

    name = "griffinlim"
    sample_rate = SAMPLE_RATE

    def __init__(self, n_iter: int = GL_ITERS, device: str | torch.device = "cpu", seed: int = 0):
        self.n_iter = n_iter
        self.device = torch.device(device)
        self.seed = seed

    def __call__(self, mel: torch.Tensor) -> torch.Tensor:
        x = torch.as_tensor(mel, dtype=torch.float32, device=self.device)
        if x.ndim == 2:
            x = x[None]
        if x.ndim != 3 or x.shape[-1] != N_MELS:
            raise ValueError(f"mel must be (B, T, {N_MELS}), got {tuple(x.shape)}")
        t = x.shape[1]
        if t < 2:
            raise ValueError("Griffin-Lim needs at least 2 mel frames")
        lin = mel_to_linear(x)  # (B, 513, T)
        window = torch.hann_window(WIN_LENGTH, periodic=True, device=self.device)
        gen = torch.random.fork_rng(devices=[]) if self.device.type == "cpu" else torch.random.fork_rng()
        with gen:
            torch.manual_seed(self.seed)  # rand_init phases: same mel, same audio
            wav = AF.griffinlim(
                lin,
                window=window,
                n_fft=N_FFT,
                hop_length=HOP_LENGTH,
                win_length=WIN_LENGTH,
                power=1.0,
                n_iter=self.n_iter,
                momentum=GL_MOMENTUM,
                length=(t - 1) * HOP_LENGTH,  # the length whose centred STFT has exactly T frames
                rand_init=True,
            )  # (B, (T-1)·hop), frame t centred at t·hop
        wav = F.pad(wav, (FRAME_SHIFT, HOP_LENGTH))  # (B, (T-1)·hop + 128 + hop)
        return wav[:, : t * HOP_LENGTH]  # (B, T·hop), aligned to our frames
