"""The GEN layout: what a system produced for each test clip, as ``eval --from-dir`` reads it.

One folder per clip id (the shard manifest's ``id``), the same files ``avflow synth`` writes
(docs/ARCHITECTURE.md §4), so avflow's own outputs and other systems' outputs are scored alike::

    GEN/
      CLIP_ID/
        motion.npz    face (T, F) face codes at FPS            required
                      head_pose (T, 7) quaternion wxyz + translation (mm)   optional: BC_h, Div_h
                      mel (T, 80) natural-log mel, our recipe   optional if speech.wav exists
                      head_latent (T, 8), tokens (T, 29), fps   optional (fps defaults to FPS)
        speech.wav    mono speech, any sample rate              optional if motion.npz has mel
        meta.json     {"text": ..., "timings_s": {"t2t"|"avflow"|"head_vae"|"vocoder": s},
                       "seconds": s}                             optional: WER reference, speed

Streams at another frame rate (``fps`` in motion.npz) are resampled to FPS by timestamps.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from avflow_cli import constants as K
from avflow_cli.errors import AvflowError, InputFileError
from avflow_cli.fsutil import atomic_dir
from avflow_cli.jsonfile import read_json
from avflow_cli.npzfile import READ_ERRORS
from avflow_cli.output import META_NAME, MOTION_NAME, SPEECH_NAME  # noqa: F401  (the GEN layout's names)


@dataclass
class ClipPrediction:
    """One clip's generated streams at FPS."""

    face: np.ndarray  # (T, F)
    head_pose: np.ndarray | None = None  # (T, 7)
    mel: np.ndarray | None = None  # (T, 80)
    wav: np.ndarray | None = None  # (N,)
    sample_rate: int = K.SAMPLE_RATE
    head_latent: np.ndarray | None = None  # (T, 8)
    tokens: np.ndarray | None = None  # (T, 29)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def text(self) -> str | None:
        text = self.meta.get("text")
        return str(text) if text else None


def _to_fps(arr: np.ndarray, fps: float, quaternion: bool = False) -> np.ndarray:
    if abs(fps - K.FPS) < 1e-6:
        return arr
    from avflow_cli.data.resample import resample_headpose, resample_to_fps

    return resample_headpose(arr, fps) if quaternion else resample_to_fps(arr, fps)


def load_prediction(clip_dir: str | Path) -> ClipPrediction:
    """Read one clip folder of the GEN layout; one-line errors for missing or malformed files."""
    clip_dir = Path(clip_dir)
    motion_path = clip_dir / MOTION_NAME
    if not motion_path.is_file():
        raise InputFileError(motion_path, "missing (every clip folder needs motion.npz with a 'face' array)")
    try:
        with np.load(motion_path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except READ_ERRORS as err:  # a damaged archive too (BadZipFile, a bad CRC)
        raise InputFileError(motion_path, f"not a readable .npz ({err})") from err
    if "face" not in arrays or arrays["face"].ndim != 2:
        raise InputFileError(motion_path, "needs a 'face' array of shape (T, F)")
    fps = float(arrays.get("fps", K.FPS))
    for name, dim in (("head_pose", K.HEAD_POSE_DIM), ("mel", K.N_MELS)):
        if name in arrays and (arrays[name].ndim != 2 or arrays[name].shape[1] != dim):
            raise InputFileError(motion_path, f"'{name}' must be (T, {dim}), got {arrays[name].shape}")
    for name, arr in arrays.items():
        if arr.dtype.kind == "f" and not np.isfinite(arr).all():
            raise InputFileError(motion_path, f"'{name}' contains NaN or Inf")
    pred = ClipPrediction(
        face=_to_fps(arrays["face"].astype(np.float32), fps),
        head_pose=_to_fps(arrays["head_pose"].astype(np.float32), fps, quaternion=True) if "head_pose" in arrays else None,
        mel=arrays["mel"].astype(np.float32) if "mel" in arrays else None,  # mel is always at FPS
        head_latent=arrays.get("head_latent"),
        tokens=arrays.get("tokens"),
    )
    wav_path = clip_dir / SPEECH_NAME
    if wav_path.is_file():
        from avflow_cli.audio.io import read_audio

        audio, sr = read_audio(wav_path)
        pred.wav, pred.sample_rate = audio.mean(axis=0), sr  # (N,) mono
    if pred.mel is None and pred.wav is None:
        raise InputFileError(clip_dir, "has neither speech.wav nor a 'mel' array in motion.npz: no speech to score")
    meta_path = clip_dir / META_NAME
    if meta_path.is_file():
        pred.meta = read_json(meta_path)
    return pred


def save_prediction(clip_dir: str | Path, pred: ClipPrediction, *, force: bool = False) -> Path:
    """Write one clip folder of the GEN layout atomically (the folder appears whole or not at all).

    An existing folder is replaced only when avflow wrote it as a clip, or with ``force``.
    """
    from avflow_cli.audio.io import write_audio

    arrays: dict[str, Any] = {"face": pred.face, "fps": np.float64(K.FPS)}
    for name in ("head_pose", "mel", "head_latent", "tokens"):
        value = getattr(pred, name)
        if value is not None:
            arrays[name] = np.asarray(value, np.float32)
    with atomic_dir(clip_dir, kind="clip", force=force) as tmp:
        np.savez_compressed(tmp / MOTION_NAME, **arrays)
        if pred.wav is not None:
            write_audio(tmp / SPEECH_NAME, pred.wav, pred.sample_rate)
        (tmp / META_NAME).write_text(json.dumps(pred.meta, indent=2))
    return Path(clip_dir)


def is_complete(clip_dir: str | Path) -> bool:
    """True when a clip folder already holds a finished prediction (re-runs skip it)."""
    clip_dir = Path(clip_dir)
    return (clip_dir / MOTION_NAME).is_file() and (clip_dir / META_NAME).is_file()


def list_clip_dirs(gen_dir: str | Path) -> dict[str, Path]:
    """Clip id → folder for every sub-folder of ``gen_dir`` that holds motion.npz."""
    gen_dir = Path(gen_dir)
    if not gen_dir.is_dir():
        raise AvflowError(f"{gen_dir}: not a directory of generated clips")
    return {p.name: p for p in sorted(gen_dir.iterdir()) if (p / MOTION_NAME).is_file()}
