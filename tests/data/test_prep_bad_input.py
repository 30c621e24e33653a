"""Bad input: every case is a one-line error naming the file and the problem, exit 2, no output."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from avflow_cli.cli.main import app

runner = CliRunner()


def files_under(path: Path) -> set[Path]:
    return set(path.rglob("*")) if path.exists() else set()


def expect_error(args: list[str], out: Path, *needles: str) -> str:
    """Run the CLI; check exit 2, one error line holding every needle, and nothing new in ``out``."""
    before = files_under(out)
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.output
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    assert files_under(out) == before, sorted(map(str, files_under(out) - before))
    return lines[0]


def _edit_audio(session: Path, fn: Callable[[np.ndarray, int], tuple[np.ndarray, int]], subtype: str = "PCM_16") -> None:
    audio, sr = sf.read(str(session / "audio.wav"), dtype="float32")
    audio, sr = fn(audio, sr)
    sf.write(str(session / "audio.wav"), audio, sr, subtype=subtype)


def test_mono_where_stereo_is_needed(session: Path, tmp_path: Path) -> None:
    _edit_audio(session, lambda a, sr: (a[:, 0], sr))
    expect_error(["prep", "vad", str(session), str(tmp_path / "out")], tmp_path / "out", "audio.wav", "expected stereo")


def test_sample_rate_differs_from_session_json(session: Path, tmp_path: Path) -> None:
    _edit_audio(session, lambda a, sr: (a, 44100))
    expect_error(["prep", "mel", str(session), str(tmp_path / "out")], tmp_path / "out", "audio.wav", "44100 Hz differs from 48000 Hz")


def test_sample_rate_too_low(session: Path, tmp_path: Path) -> None:
    _edit_audio(session, lambda a, sr: (a[::6], 8000))
    meta = json.loads((session / "session.json").read_text())
    (session / "session.json").write_text(json.dumps(meta | {"sample_rate": 8000}))
    expect_error(["prep", "vad", str(session), str(tmp_path / "out")], tmp_path / "out", "audio.wav", "8000 Hz is too low")


def test_empty_wav(session: Path, tmp_path: Path) -> None:
    _edit_audio(session, lambda a, sr: (a[:0], sr))
    expect_error(["prep", "all", str(session), str(tmp_path / "out")], tmp_path / "out", "audio.wav", "empty")


def test_truncated_wav(session: Path, tmp_path: Path) -> None:
    path = session / "audio.wav"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    expect_error(["prep", "vad", str(session), str(tmp_path / "out")], tmp_path / "out", "audio.wav", "truncated")


def test_nan_in_audio(session: Path, tmp_path: Path) -> None:
    def poison(a: np.ndarray, sr: int) -> tuple[np.ndarray, int]:
        a[1000, 0] = np.nan
        return a, sr

    _edit_audio(session, poison, subtype="FLOAT")
    expect_error(["prep", "vad", str(session), str(tmp_path / "out")], tmp_path / "out", "audio.wav", "NaN")


def test_inf_in_face_codes(session: Path, tmp_path: Path) -> None:
    face = np.load(session / "face_codes.npy")
    face[10, 2] = np.inf
    np.save(session / "face_codes.npy", face)
    expect_error(["prep", "all", str(session), str(tmp_path / "out")], tmp_path / "out", "face_codes.npy", "Inf")


def test_nan_in_participant_features(session: Path, tmp_path: Path) -> None:
    smirk = np.load(session / "participant_smirk.npy")
    smirk[4] = np.nan
    np.save(session / "participant_smirk.npy", smirk)
    expect_error(["prep", "shards", str(session), str(tmp_path / "out")], tmp_path / "out", "participant_smirk.npy", "NaN")


def test_nan_in_precomputed_tokens(session: Path, tmp_path: Path) -> None:
    tokens = np.zeros((400, 29), np.float32)
    tokens[7] = np.nan
    np.save(session / "tokens_actor.npy", tokens)
    np.save(session / "tokens_participant.npy", np.zeros((400, 29), np.float32))
    expect_error(["prep", "tokens", str(session), str(tmp_path / "out")], tmp_path / "out", "tokens_actor.npy", "NaN")


def test_streams_of_very_different_lengths(session: Path, tmp_path: Path) -> None:
    for name in ("face_codes.npy", "head_rot.npy", "head_trans.npy", "face_valid.npy", "participant_smirk.npy"):
        arr = np.load(session / name)
        np.save(session / name, arr[: len(arr) - 90])  # 3 s shorter than the audio
    expect_error(["prep", "all", str(session), str(tmp_path / "out")], tmp_path / "out", "differ in length", "audio.wav", "face_codes.npy")


def test_non_orthonormal_rotations(session: Path, tmp_path: Path) -> None:
    rot = np.load(session / "head_rot.npy")
    rot[20] *= 2.0
    np.save(session / "head_rot.npy", rot)
    expect_error(["prep", "headpose", str(session), str(tmp_path / "out")], tmp_path / "out", "head_rot.npy", "not orthonormal", "frame 20")


def test_missing_file(session: Path, tmp_path: Path) -> None:
    (session / "head_trans.npy").unlink()
    expect_error(["prep", "all", str(session), str(tmp_path / "out")], tmp_path / "out", "head_trans.npy", "file not found")


def test_corrupt_array(session: Path, tmp_path: Path) -> None:
    (session / "face_codes.npy").write_bytes(b"not a numpy file")
    expect_error(["prep", "shards", str(session), str(tmp_path / "out")], tmp_path / "out", "face_codes.npy", "not a readable")


def test_missing_source(tmp_path: Path) -> None:
    expect_error(["prep", "all", str(tmp_path / "nowhere"), str(tmp_path / "out")], tmp_path / "out", "nowhere", "not found")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_output_dir(session: Path, tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        expect_error(["prep", "all", str(session), str(locked / "out")], locked, "locked/out", "not writable")
    finally:
        locked.chmod(0o755)


def test_output_dir_under_a_file(session: Path, tmp_path: Path) -> None:
    """The unwritable case that holds for root too: the output's parent is a regular file."""
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    expect_error(["prep", "all", str(session), str(blocker / "out")], tmp_path / "src", "blocker/out", "cannot create output directory")
