"""Fixtures of the live-session tests: a tiny listening model, flite speech, a drawn face, real recordings."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tiny_synth(tiny_listening_model: Path):
    from avflow_cli.synth import Synthesizer

    return Synthesizer(tiny_listening_model, device="cpu")


@pytest.fixture(scope="session")
def flite_speech(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A sentence by flite's rms voice (16 kHz mono) with 0.4 s of silence before and after."""
    import soundfile as sf

    if shutil.which("flite") is None:
        pytest.skip("flite is not installed (make system-deps)")
    folder = tmp_path_factory.mktemp("live_speech")
    raw = folder / "raw.wav"
    subprocess.run(["flite", "-voice", "rms", "-t", "I think that is a really good idea, tell me more.", "-o", str(raw)],
                   check=True)
    x, sr = sf.read(str(raw), dtype="float32")
    pad = np.zeros(int(0.4 * sr), np.float32)
    out = folder / "user.wav"
    sf.write(str(out), np.concatenate([pad, x, pad]), sr)
    return out


def drawn_faces(smiles: np.ndarray, size: int = 160) -> np.ndarray:
    """The demo participant's face (RGB uint8 (n, size, size, 3)) with the given smile per frame."""
    from avflow_cli.render.demo_avatar import NEUTRAL_PARAMS, PARAM_INDEX, render_frames

    params = np.repeat(NEUTRAL_PARAMS[None], len(smiles), axis=0).astype(np.float32)
    params[:, PARAM_INDEX["smile"]] = smiles
    return np.stack(list(render_frames(params, None, size, palette="participant")))


def real_data(item: str) -> Path:
    """``$AVFLOW_REAL_DATA/<item>`` (default: real_data/ in the repository); skips without it."""
    root = Path(os.environ.get("AVFLOW_REAL_DATA", REPO / "real_data"))
    if not (root / item).is_dir():
        pytest.skip(f"real recordings not found in {root / item}: run `make real-data`")
    return root / item
