"""The one output writer (avflow_cli/output.py): streamed audio appended then finalised, each file
staged and committed together, only its own names replaced, nothing left by a failure."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from avflow_cli.errors import AvflowError
from avflow_cli.fsutil import OUTPUT_MARKER
from avflow_cli.output import META_NAME, MOTION_NAME, PREVIEW_NAME, SPEECH_NAME, OutputFolder


def _write(out: Path, chunks: list[np.ndarray], *, preview: bool, **kw: object) -> Path:
    existed = out.exists()
    with OutputFolder(out, kind="synth", **kw) as folder:
        with folder.audio_stream(22050) as speech:
            for chunk in chunks:
                speech.append(chunk)
                assert out.exists() == existed  # nothing appears at the target before the commit
        folder.write_npz(MOTION_NAME, face=np.zeros((4, 3), np.float32))
        if preview:
            folder.file(PREVIEW_NAME).write_bytes(b"mp4")
        folder.write_json(META_NAME, {"samples": speech.samples})
    return out


def test_streamed_audio_is_appended_then_committed_with_the_rest(tmp_path: Path) -> None:
    out = tmp_path / "out"
    chunks = [np.full(100, 0.25, np.float32), np.zeros(0, np.float32), np.full(50, -2.0, np.float32)]
    _write(out, chunks, preview=True)
    wav, sr = sf.read(out / SPEECH_NAME, dtype="float32")
    assert sr == 22050 and len(wav) == 150
    assert np.allclose(wav[:100], 0.25, atol=1e-4) and np.allclose(wav[100:], -1.0, atol=1e-4)  # clipped
    assert json.loads((out / META_NAME).read_text()) == {"samples": 150}
    assert sorted(p.name for p in out.iterdir()) == sorted([OUTPUT_MARKER, SPEECH_NAME, MOTION_NAME, PREVIEW_NAME, META_NAME])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_rerun_replaces_its_own_files_only(tmp_path: Path) -> None:
    out = _write(tmp_path / "out", [np.zeros(10, np.float32)], preview=True)
    (out / "face.mp4").write_bytes(b"the user's render")
    _write(out, [np.zeros(20, np.float32)], preview=False)
    assert not (out / PREVIEW_NAME).exists()  # the old preview belonged to the old speech
    assert (out / "face.mp4").read_bytes() == b"the user's render"
    assert sf.info(out / SPEECH_NAME).frames == 20


def test_a_failure_leaves_nothing_and_the_old_output_whole(tmp_path: Path) -> None:
    out = _write(tmp_path / "out", [np.zeros(10, np.float32)], preview=False)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(RuntimeError):
        with OutputFolder(out, kind="synth") as folder:
            with folder.audio_stream(22050) as speech:
                speech.append(np.ones(5, np.float32))
                raise RuntimeError("the stream broke")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_the_target_is_checked_before_any_work(tmp_path: Path) -> None:
    user = tmp_path / "user"
    user.mkdir()
    (user / "a.txt").write_text("a")
    with pytest.raises(AvflowError, match="holds files avflow did not write"):
        OutputFolder(user, kind="synth")
    model = tmp_path / "model"
    model.mkdir()
    with pytest.raises(AvflowError, match="which this command reads"):
        OutputFolder(tmp_path, kind="synth", force=True, protect=[model])


def test_only_known_names_are_written(tmp_path: Path) -> None:
    with OutputFolder(tmp_path / "out", kind="synth") as folder:
        with pytest.raises(ValueError, match="not an output file"):
            folder.file("../escape.txt")
        folder.write_json(META_NAME, {})
