"""Write one session folder in the layout `prep` reads (docs/INTERFACES.md §1), atomically.

Every importer ends here: it validates the arrays it hands over (shapes, lengths, finite
values), writes them into a temporary folder and renames it into place, so a session folder
either holds everything or does not exist. A finished session (``session.json`` present) is
skipped on re-runs unless ``force`` is set.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from avflow_cli.constants import CAPTURE_SAMPLE_RATE, TOKEN_DIM
from avflow_cli.errors import AvflowError, InputFileError
from avflow_cli.fsutil import atomic_dir

SESSION_FILE = "session.json"
AUDIO_LENGTH_TOLERANCE_S = 1.0  # audio may differ from the face stream by this much


@dataclass
class ImportReport:
    """What an import did: sessions written, skipped because finished, skipped with a reason."""

    written: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def summary(self) -> str:
        parts = [f"{len(self.written)} written", f"{len(self.existing)} already done"]
        if self.skipped:
            parts.append(f"{len(self.skipped)} skipped")
        return ", ".join(parts)


@dataclass
class SessionData:
    """Everything one session holds. Arrays at ``face_fps``; audio as a file or (C, N) samples."""

    name: str
    source: str
    face_fps: float
    face_codes: np.ndarray  # (N, F)
    head_rot: np.ndarray  # (N, 3, 3)
    head_trans: np.ndarray  # (N, 3)
    audio_file: Path | None = None  # copied (or linked) as audio.wav when already in the layout
    audio: np.ndarray | None = None  # (C, N_samples) float, written as 16-bit PCM
    sample_rate: int = CAPTURE_SAMPLE_RATE
    face_valid: np.ndarray | None = None  # (N,) bool
    participant_smirk: np.ndarray | None = None  # (N, 56|58)
    tokens_actor: np.ndarray | None = None  # (N_tok, 29) at 50 Hz
    tokens_participant: np.ndarray | None = None
    translation_units: str = "mm"
    extra_arrays: dict[str, np.ndarray] = field(default_factory=dict)  # name.npy → array (documented per source)
    meta: dict[str, Any] = field(default_factory=dict)  # extra session.json keys (split, provenance)


def session_done(folder: Path) -> bool:
    """True when ``folder`` already holds a complete session (session.json is written last)."""
    return (folder / SESSION_FILE).is_file()


def _check_float(name: str, arr: np.ndarray, ndim: int, *, allow_nan: bool = False) -> np.ndarray:
    arr = np.asarray(arr)
    if arr.ndim != ndim or not np.issubdtype(arr.dtype, np.number):
        raise AvflowError(f"{name}: expected a {ndim}-d numeric array, got shape {arr.shape} ({arr.dtype})")
    bad = ~np.isfinite(arr) if not allow_nan else np.isinf(arr)
    if bad.any():
        raise AvflowError(f"{name}: {int(bad.sum())} non-finite values")
    return arr.astype(np.float32)


def _audio_info(data: SessionData) -> tuple[int, int, float]:
    """(channels, sample rate, seconds) of the session's audio, validating the source file."""
    if data.audio_file is not None:
        try:
            info = sf.info(str(data.audio_file))
        except (sf.LibsndfileError, RuntimeError) as err:
            raise InputFileError(data.audio_file, f"not a readable audio file ({err})") from err
        if info.frames <= 0:
            raise InputFileError(data.audio_file, "empty audio (0 samples)")
        return info.channels, info.samplerate, info.frames / info.samplerate
    if data.audio is None:
        raise AvflowError(f"session {data.name}: no audio given")
    audio = np.asarray(data.audio)
    if audio.ndim != 2 or audio.shape[1] == 0:
        raise AvflowError(f"session {data.name}: audio must be (C, N) with N > 0, got {audio.shape}")
    return audio.shape[0], data.sample_rate, audio.shape[1] / data.sample_rate


def validate(data: SessionData) -> dict[str, Any]:
    """Check shapes and lengths; return the session.json dictionary."""
    n = len(data.face_codes)
    face = _check_float(f"{data.name} face codes", data.face_codes, 2)
    if n == 0:
        raise AvflowError(f"session {data.name}: no face frames")
    rot = np.asarray(data.head_rot)
    if rot.shape != (n, 3, 3):
        raise AvflowError(f"session {data.name}: head rotations must be ({n}, 3, 3), got {rot.shape}")
    if np.asarray(data.head_trans).shape != (n, 3):
        raise AvflowError(f"session {data.name}: head translations must be ({n}, 3), got {np.shape(data.head_trans)}")
    if data.face_valid is not None and np.shape(data.face_valid) != (n,):
        raise AvflowError(f"session {data.name}: face_valid must be ({n},), got {np.shape(data.face_valid)}")
    if data.participant_smirk is not None and np.ndim(data.participant_smirk) != 2:
        raise AvflowError(f"session {data.name}: participant SMIRK features must be 2-d")
    for label, tok in (("actor", data.tokens_actor), ("participant", data.tokens_participant)):
        if tok is not None and (np.ndim(tok) != 2 or np.shape(tok)[1] != TOKEN_DIM):
            raise AvflowError(f"session {data.name}: {label} tokens must be (N_tok, {TOKEN_DIM}), got {np.shape(tok)}")
    channels, sr, seconds = _audio_info(data)
    face_seconds = n / data.face_fps
    if abs(seconds - face_seconds) > AUDIO_LENGTH_TOLERANCE_S:
        where = data.audio_file or data.name
        raise InputFileError(
            where, f"audio lasts {seconds:.2f} s but the face stream {face_seconds:.2f} s ({n} frames at {data.face_fps:g} fps)"
        )
    chan_map = {"actor": 0, "participant": 1} if channels >= 2 else {"actor": 0}
    meta = {
        "name": data.name,
        "sample_rate": int(sr),
        "channels": chan_map,
        "face_fps": float(data.face_fps),
        "face_dim": int(face.shape[1]),
        "source": data.source,
        "translation_units": data.translation_units,
        "num_frames": n,
    }
    meta.update(data.meta)
    return meta


def _save(folder: Path, name: str, arr: np.ndarray, dtype: type = np.float32) -> None:
    np.save(folder / name, np.ascontiguousarray(np.asarray(arr).astype(dtype)))


def write_session(folder: str | Path, data: SessionData, *, link_audio: bool = False, force: bool = False) -> bool:
    """Write ``data`` as a session folder. Returns False when it was already complete (skipped)."""
    from avflow_cli.audio.io import write_audio

    folder = Path(folder)
    if session_done(folder) and not force:
        return False
    meta = validate(data)
    with atomic_dir(folder, kind="session", force=force) as tmp:
        if data.audio_file is not None:
            if link_audio:
                try:
                    os.link(data.audio_file, tmp / "audio.wav")
                except OSError:
                    shutil.copyfile(data.audio_file, tmp / "audio.wav")
            else:
                shutil.copyfile(data.audio_file, tmp / "audio.wav")
        else:
            write_audio(tmp / "audio.wav", data.audio, data.sample_rate)
        _save(tmp, "face_codes.npy", data.face_codes)
        _save(tmp, "head_rot.npy", data.head_rot)
        _save(tmp, "head_trans.npy", data.head_trans)
        if data.face_valid is not None:
            _save(tmp, "face_valid.npy", data.face_valid, bool)
        if data.participant_smirk is not None:
            _save(tmp, "participant_smirk.npy", data.participant_smirk)
        if data.tokens_actor is not None:
            _save(tmp, "tokens_actor.npy", data.tokens_actor)
        if data.tokens_participant is not None:
            _save(tmp, "tokens_participant.npy", data.tokens_participant)
        for fname, arr in data.extra_arrays.items():
            _save(tmp, fname, arr)
        (tmp / SESSION_FILE).write_text(json.dumps(meta, indent=1))
    return True
