"""Audio file I/O through soundfile, with validation that turns bad files into one-line errors.

Arrays are float32, shaped (C, N): channels first, N samples.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF

from avflow_cli.errors import InputFileError
from avflow_cli.fsutil import atomic_path


def read_audio(
    path: str | Path,
    *,
    channels: int | None = None,
    sample_rate: int | None = None,
    min_seconds: float = 0.0,
) -> tuple[np.ndarray, int]:
    """Read ``path`` as float32 (C, N) and its sample rate.

    Raises InputFileError when the file is missing, unreadable, empty, truncated, has the
    wrong number of ``channels`` or ``sample_rate`` (when given), or holds NaN/Inf.
    """
    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, "file not found")
    try:
        info = sf.info(str(path))
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)  # (N, C)
    except (sf.LibsndfileError, RuntimeError, ValueError) as err:
        raise InputFileError(path, f"not a readable audio file ({err})") from err
    if info.frames > 0 and data.shape[0] < info.frames:
        raise InputFileError(path, f"truncated: header says {info.frames} samples, file has {data.shape[0]}")
    if data.shape[0] == 0:
        raise InputFileError(path, "empty audio (0 samples)")
    if data.shape[0] < min_seconds * sr:
        raise InputFileError(path, f"too short: {data.shape[0] / sr:.3f} s (need at least {min_seconds} s)")
    if channels is not None and data.shape[1] != channels:
        kind = {1: "mono", 2: "stereo (2-channel)"}.get(channels, f"{channels}-channel")
        raise InputFileError(path, f"expected {kind} audio, got {data.shape[1]} channel(s)")
    if sample_rate is not None and sr != sample_rate:
        raise InputFileError(path, f"expected {sample_rate} Hz audio, got {sr} Hz")
    if not np.isfinite(data).all():
        raise InputFileError(path, "audio contains NaN or Inf samples")
    return np.ascontiguousarray(data.T), int(sr)


def write_audio(path: str | Path, audio: np.ndarray, sample_rate: int) -> Path:
    """Write float audio (C, N) or (N,) as 16-bit PCM WAV, atomically."""
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim == 1:
        audio = audio[None]
    if not np.isfinite(audio).all():
        raise ValueError("refusing to write audio with NaN/Inf samples")
    with atomic_path(path) as tmp:
        sf.write(str(tmp), np.clip(audio.T, -1.0, 1.0), sample_rate, subtype="PCM_16", format="WAV")
    return Path(path)


def resample(audio: np.ndarray | torch.Tensor, orig_sr: int, new_sr: int) -> torch.Tensor:
    """Band-limited sinc resampling (Kaiser window, librosa's "kaiser_best" parameters).

    shape: (..., N) -> (..., ceil(N * new_sr / orig_sr))
    """
    x = torch.as_tensor(audio, dtype=torch.float32)
    if orig_sr == new_sr:
        return x
    return AF.resample(
        x,
        orig_sr,
        new_sr,
        lowpass_filter_width=64,
        rolloff=0.9475937167399596,
        resampling_method="sinc_interp_kaiser",
        beta=14.769656459379492,
    )
