"""Small real-speech sessions in the INTERFACES.md §1 layout, made inside the tests (flite + numpy).

Fixtures ``make_session`` and ``make_tree`` hand the builders to the prep tests; they skip the
test when flite (a Debian package, `make system-deps`) is missing. The actor speaks with flite's
``slt`` voice, the participant with ``rms``; channel 1 bleeds into channel 0 and back at −18 dB
with a 1 ms delay, plus noise, like a close-talk dyadic capture.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from avflow_cli.audio.io import resample

CAPTURE_SR = 48000
BLEED_DB = -18.0
FACE_FPS = 30.0
SENTENCES = (
    ("actor", "slt", "The birch canoe slid on the smooth planks."),
    ("participant", "rms", "Yeah, right."),
    ("actor", "slt", "Glue the sheet to the dark blue background."),
)

@lru_cache(maxsize=32)
def flite_speech(voice: str, text: str) -> tuple[np.ndarray, tuple[tuple[str, float, float], ...]]:
    """48 kHz speech and its phones [(phone, start, end)] from flite's -psdur output."""
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "s.wav"
        out = subprocess.run(["flite", "-voice", voice, "-t", text, "-o", str(wav), "-psdur"],
                             capture_output=True, text=True, check=True).stdout
        x, sr = sf.read(str(wav), dtype="float32")
    phones, prev = [], 0.0
    for item in out.split():
        name, end = item.rsplit(":", 1)
        phones.append((name, prev, float(end)))
        prev = float(end)
    return resample(x, sr, CAPTURE_SR).numpy(), tuple(phones)


def smooth_noise(rng: np.random.Generator, n: int, dim: int, scale: float = 1.0) -> np.ndarray:
    """Smooth random signals: a few random sinusoids per dimension. (n, dim)"""
    t = np.arange(n)[:, None] / FACE_FPS
    out = np.zeros((n, dim))
    for _ in range(3):
        out += rng.normal(size=dim) * np.sin(2 * np.pi * rng.uniform(0.1, 1.0, size=dim) * t + rng.uniform(0, 6.3, size=dim))
    return (scale * out).astype(np.float32)


def rotation_matrices(angles: np.ndarray) -> np.ndarray:
    """Rotations from small yaw/pitch/roll angles (n, 3) → (n, 3, 3)."""
    from scipy.spatial.transform import Rotation

    return Rotation.from_euler("yxz", angles).as_matrix()


def _make_session(root: Path, name: str, seed: int = 0, *, face_dim: int = 8, gap_s: float = 0.6) -> Path:
    """Write one dyadic session folder with audio, transcript, face codes, head pose, SMIRK."""
    rng = np.random.default_rng(seed)
    folder = root / name
    folder.mkdir(parents=True)
    turns, pieces, t = [], [], 0.3
    for speaker, voice, text in SENTENCES:
        wav, phones = flite_speech(voice, text)
        turns.append({"speaker": speaker, "start": t, "end": t + len(wav) / CAPTURE_SR, "text": text,
                      "phones": [[p, t + a, t + b] for p, a, b in phones]})
        pieces.append((speaker, int(t * CAPTURE_SR), wav))
        t += len(wav) / CAPTURE_SR + gap_s
    n = int((t + 0.2) * CAPTURE_SR)
    clean = np.zeros((2, n), np.float32)
    for speaker, start, wav in pieces:
        clean[0 if speaker == "actor" else 1, start : start + len(wav)] += 0.8 * wav
    gain, delay = 10 ** (BLEED_DB / 20), CAPTURE_SR // 1000
    audio = clean.copy()
    audio[0, delay:] += gain * clean[1, :-delay]
    audio[1, delay:] += gain * clean[0, :-delay]
    audio += rng.normal(scale=10 ** (-55 / 20), size=audio.shape).astype(np.float32)
    sf.write(str(folder / "audio.wav"), audio.T, CAPTURE_SR, subtype="PCM_16")
    frames = int(n / CAPTURE_SR * FACE_FPS)
    np.save(folder / "face_codes.npy", smooth_noise(rng, frames, face_dim))
    np.save(folder / "head_rot.npy", rotation_matrices(smooth_noise(rng, frames, 3, 0.05)))
    np.save(folder / "head_trans.npy", smooth_noise(rng, frames, 3, 5.0) + np.array([0, 0, 1000], np.float32))
    valid = np.ones(frames, bool)
    valid[frames // 2 : frames // 2 + 5] = False
    np.save(folder / "face_valid.npy", valid)
    np.save(folder / "participant_smirk.npy", smooth_noise(rng, frames, 56, 0.3))
    (folder / "transcript.json").write_text(json.dumps({"turns": turns}))
    (folder / "session.json").write_text(json.dumps({
        "name": name, "sample_rate": CAPTURE_SR, "channels": {"actor": 0, "participant": 1},
        "face_fps": FACE_FPS, "face_dim": face_dim, "source": "test", "translation_units": "mm"}))
    return folder


def _make_tree(root: Path, num_sessions: int = 3) -> Path:
    """A corpus tree: root/day{k}/sNN sessions plus a face_decoder.npz, as the demo corpus ships."""
    for k in range(num_sessions):
        _make_session(root / f"day{k % 2}", f"s{k:02d}", seed=k, gap_s=0.4 + 0.1 * k)
    np.savez(root / "face_decoder.npz", weight=np.eye(4, dtype=np.float32))
    return root


def _need_flite() -> None:
    if shutil.which("flite") is None:
        pytest.skip("flite is not installed (make system-deps)")


@pytest.fixture(scope="session")
def make_session() -> Callable[..., Path]:
    """``make_session(root, name, seed=0, *, face_dim=8, gap_s=0.6)`` → a dyadic session folder."""
    _need_flite()
    return _make_session


@pytest.fixture(scope="session")
def make_tree() -> Callable[..., Path]:
    """``make_tree(root, num_sessions=3)`` → a corpus tree of sessions plus a face_decoder.npz."""
    _need_flite()
    return _make_tree


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory, make_session: Callable[..., Path]) -> Path:
    """One session per test module, never modified: tests take copies (``session``)."""
    return make_session(tmp_path_factory.mktemp("pristine"), "s0")


@pytest.fixture
def session(pristine: Path, tmp_path: Path) -> Path:
    """A fresh copy of ``pristine`` at tmp_path/src/s0 that a test may damage."""
    return Path(shutil.copytree(pristine, tmp_path / "src" / "s0"))

