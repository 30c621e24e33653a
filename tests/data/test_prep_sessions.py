"""The prep tests' session builder (tests/data/conftest.py) writes the INTERFACES.md §1 layout."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import soundfile as sf


def test_make_session_layout(make_session: Callable[..., Path], tmp_path: Path) -> None:
    folder = make_session(tmp_path, "s")
    meta = json.loads((folder / "session.json").read_text())
    audio, sr = sf.read(str(folder / "audio.wav"))
    assert sr == meta["sample_rate"] == 48000 and audio.shape[1] == 2
    faces = np.load(folder / "face_codes.npy")
    assert abs(len(faces) / meta["face_fps"] - len(audio) / sr) < 0.05
    turns = json.loads((folder / "transcript.json").read_text())["turns"]
    assert [t["speaker"] for t in turns] == ["actor", "participant", "actor"]
    assert all(t["phones"][-1][2] <= t["end"] + 0.01 for t in turns)
