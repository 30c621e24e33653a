"""A light iSTFT vocoder (Vocos-style ConvNeXt generator) for real-time CPU synthesis.

The shipped HiFi-GAN V1 needs ~53 GFLOP per second of audio; this generator predicts the
STFT (n_fft 1024, hop 256, Hann) of the waveform frame by frame and inverts it, so it never
runs convolutions at the audio rate: ~1 GFLOP per audio second with the default width.

Network (per mel frame, all convs "same"): Conv1d(80 → C, k7) → LayerNorm → N ConvNeXt blocks
(depthwise Conv1d k7, LayerNorm, Linear C → I, GELU, Linear I → C, layer scale, residual) →
LayerNorm → Linear(C → 2·(n_fft/2+1)) split into log-magnitude and phase p; the spectrum
exp(m)·(cos p + i sin p) is inverted by :func:`istft_same`, whose frames sit where the mel
recipe's analysis frames sit (frame t centred on sample t·hop + hop/2), so T mel frames give
exactly T·hop samples, aligned with HiFi-GAN's output.

Weights are trained by ``avflow train vocoder`` (distillation from the HiFi-GAN teacher,
:mod:`avflow_cli.train.vocoder`) and stored as ``model.safetensors`` + ``config.json``.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from avflow_cli.constants import HOP_LENGTH, N_FFT, N_MELS, WIN_LENGTH
from avflow_cli.errors import InputFileError
from avflow_cli.jsonfile import read_json_config
from avflow_cli.weights import load_safetensors, save_safetensors, state_dict_mismatch

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
QUALITY_FILE = "quality.json"  # WER of student and teacher on held-out sentences (train/vocoder.py)
KIND = "istft-convnext"
MAX_LOG_MAG = 6.0  # exp(6) ≈ 400: far above any speech STFT magnitude at unit-scale audio


@dataclass(frozen=True)
class StudentConfig:
    """Architecture of the student; ``n_fft``/``hop`` are the mel recipe's (docs/ARCHITECTURE.md §1)."""

    channels: int = 256
    intermediate: int = 768
    blocks: int = 8
    kernel: int = 7
    num_mels: int = N_MELS
    n_fft: int = N_FFT
    hop: int = HOP_LENGTH
    win: int = WIN_LENGTH
    kind: str = KIND

    @classmethod
    def from_json(cls, path: str | Path) -> StudentConfig:
        path = Path(path)
        raw = read_json_config(path)
        if not isinstance(raw, dict) or raw.get("kind") != KIND:
            raise InputFileError(path, f"not a student vocoder config (expected \"kind\": \"{KIND}\")")
        known = {f.name for f in fields(cls)}
        try:
            cfg = cls(**{k: v for k, v in raw.items() if k in known})
        except TypeError as err:
            raise InputFileError(path, f"malformed student vocoder config ({err})") from err
        if (cfg.n_fft, cfg.hop, cfg.win, cfg.num_mels) != (N_FFT, HOP_LENGTH, WIN_LENGTH, N_MELS):
            raise InputFileError(path, f"student vocoder uses another STFT/mel recipe ({cfg.n_fft}/{cfg.hop}/"
                                       f"{cfg.win}/{cfg.num_mels}; avflow uses {N_FFT}/{HOP_LENGTH}/{WIN_LENGTH}/{N_MELS})")
        return cfg

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"


def istft_same(spec: torch.Tensor, n_fft: int, hop: int, window: torch.Tensor) -> torch.Tensor:
    """Inverse STFT whose frame t is centred on sample t·hop + hop/2: (B, F, T) complex → (B, T·hop).

    Overlap-add of windowed inverse FFTs, divided by the summed squared window, then
    (n_fft − hop)/2 samples trimmed at each end: the exact inverse of the mel recipe's
    analysis (reflect pad (n_fft − hop)/2, frames every hop, no centring) away from the edges.
    """
    B, _, T = spec.shape
    frames = torch.fft.irfft(spec, n=n_fft, dim=1) * window[None, :, None]  # (B, n_fft, T)
    length = (T - 1) * hop + n_fft
    y = F.fold(frames, output_size=(1, length), kernel_size=(1, n_fft), stride=(1, hop))[:, 0, 0]  # (B, length)
    env = F.fold(window.square()[None, :, None].expand(1, n_fft, T), output_size=(1, length),
                 kernel_size=(1, n_fft), stride=(1, hop))[0, 0, 0]  # (length,)
    trim = (n_fft - hop) // 2
    return (y / env.clamp_min(1e-8))[:, trim: length - trim]  # (B, T·hop)


class ConvNeXtBlock(nn.Module):
    """(B, C, T) → (B, C, T): depthwise conv, LayerNorm, pointwise MLP, layer scale, residual."""

    def __init__(self, channels: int, intermediate: int, kernel: int, scale: float) -> None:
        super().__init__()
        self.dwconv = nn.Conv1d(channels, channels, kernel, padding=kernel // 2, groups=channels)
        self.norm = nn.LayerNorm(channels, eps=1e-6)
        self.pw1 = nn.Linear(channels, intermediate)
        self.pw2 = nn.Linear(intermediate, channels)
        self.gamma = nn.Parameter(torch.full((channels,), scale))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.dwconv(x).transpose(1, 2)  # (B, T, C)
        y = self.pw2(F.gelu(self.pw1(self.norm(y)))) * self.gamma  # (B, T, C)
        return x + y.transpose(1, 2)  # (B, C, T)


class StudentGenerator(nn.Module):
    """Natural-log mel (B, 80, T) → waveform (B, 1, T · hop) in [-1, 1]; see the module docstring."""

    def __init__(self, cfg: StudentConfig = StudentConfig()) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Conv1d(cfg.num_mels, cfg.channels, cfg.kernel, padding=cfg.kernel // 2)
        self.norm_in = nn.LayerNorm(cfg.channels, eps=1e-6)
        self.blocks = nn.ModuleList(
            ConvNeXtBlock(cfg.channels, cfg.intermediate, cfg.kernel, 1.0 / cfg.blocks) for _ in range(cfg.blocks)
        )
        self.norm_out = nn.LayerNorm(cfg.channels, eps=1e-6)
        self.head = nn.Linear(cfg.channels, 2 * (cfg.n_fft // 2 + 1))
        self.register_buffer("window", torch.hann_window(cfg.win, periodic=True), persistent=False)

    @property
    def hop(self) -> int:
        return self.cfg.hop

    def receptive_field_frames(self) -> int:
        """Mel frames each side that reach an output sample: convs, plus the iSTFT's overlap."""
        conv = (self.cfg.kernel // 2) * (1 + self.cfg.blocks)
        return conv + math.ceil(self.cfg.n_fft / self.cfg.hop)

    def spectrum(self, mel: torch.Tensor) -> torch.Tensor:
        """(B, 80, T) → complex STFT (B, n_fft/2+1, T)."""
        x = self.embed(mel)  # (B, C, T)
        x = self.norm_in(x.transpose(1, 2)).transpose(1, 2)
        for block in self.blocks:
            x = block(x)
        h = self.head(self.norm_out(x.transpose(1, 2))).transpose(1, 2)  # (B, 2F, T)
        logmag, phase = h.float().chunk(2, dim=1)  # (B, F, T) each
        mag = torch.exp(logmag.clamp(max=MAX_LOG_MAG))
        return torch.polar(mag, phase)  # (B, F, T) complex64

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        y = istft_same(self.spectrum(mel), self.cfg.n_fft, self.cfg.hop, self.window)  # (B, T·hop)
        return y.clamp(-1.0, 1.0)[:, None]  # (B, 1, T·hop)


def save_student(model: StudentGenerator, folder: str | Path, *, half: bool = True, meta: dict | None = None) -> None:
    """Write ``config.json`` + ``model.safetensors`` (fp16 by default: half the size, same audio).

    Non-finite weights (training diverged, e.g. too high a learning rate) are refused, not saved.
    """
    from avflow_cli.errors import AvflowError
    from avflow_cli.fsutil import atomic_path

    bad = [k for k, v in model.state_dict().items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise AvflowError(f"{folder}: not saved: the student's weights are not finite ({bad[0]} and {len(bad) - 1} more); "
                          "training diverged (lower --lr)")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: (v.half() if half and v.is_floating_point() else v) for k, v in model.state_dict().items()}
    save_safetensors(folder / WEIGHTS_FILE, state, meta)  # atomic, shared like any model folder
    with atomic_path(folder / CONFIG_FILE) as tmp:
        tmp.write_text(model.cfg.to_json())


def load_student(folder: str | Path) -> StudentGenerator:
    """A frozen student generator from a folder written by :func:`save_student` (strict)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputFileError(folder, "student vocoder folder not found")
    cfg = StudentConfig.from_json(folder / CONFIG_FILE)
    path = folder / WEIGHTS_FILE
    state = load_safetensors(path, "student vocoder weights")
    model = StudentGenerator(cfg)
    problem = state_dict_mismatch(model, state)
    if problem:
        raise InputFileError(path, f"weights do not match config.json: {problem}")
    model.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def shipped_student_dir() -> Path:
    """Where the package keeps its trained student (may be absent: then ``student`` is an error)."""
    from avflow_cli.shipped import student_vocoder_dir

    return student_vocoder_dir()


def student_quality(folder: str | Path) -> dict | None:
    """The folder's ``quality.json`` (held-out WER of student vs teacher), None when absent or unreadable."""
    path = Path(folder) / QUALITY_FILE
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def meets_quality_bar(folder: str | Path) -> bool:
    """True when the student's held-out WER was measured within the margin of its teacher's."""
    q = student_quality(folder)
    return bool(q and q.get("passed") is True)
