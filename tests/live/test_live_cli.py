"""``avflow live``: the files it writes, bad input, and a stop mid-run that still leaves playable output."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from avflow_cli import constants as K
from avflow_cli.cli.main import app
from tests.live.conftest import REPO, drawn_faces

runner = CliRunner()


@pytest.fixture(scope="module")
def user_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2 s of a hum with pauses at 16 kHz (the tiny model does not need words)."""
    t = np.arange(2 * 16000) / 16000
    x = (0.3 * np.sin(2 * np.pi * 180 * t) * (np.sin(2 * np.pi * 0.7 * t) > 0)).astype(np.float32)
    out = tmp_path_factory.mktemp("live_cli") / "user.wav"
    sf.write(str(out), x, 16000)
    return out


@pytest.fixture(scope="module")
def user_mp4(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2 s of the demo participant's face at 15 fps, smiling in the second half."""
    from avflow_cli.render.video import encode_mp4

    smiles = np.r_[np.zeros(15), np.ones(15)].astype(np.float32)
    out = tmp_path_factory.mktemp("live_cli_video") / "user.mp4"
    encode_mp4(out, iter(drawn_faces(smiles, size=192)), 192, 15.0)
    return out


def _invoke(*args: str):
    return runner.invoke(app, ["live", *args])


def test_live_writes_what_the_avatar_streamed(tiny_listening_model: Path, user_wav: Path, user_mp4: Path,
                                              tmp_path: Path) -> None:
    out = tmp_path / "out"
    r = _invoke("-o", str(out), "--participant-audio", str(user_wav), "--participant-video", str(user_mp4),
                "--say", "Hello there.", "--at", "1.0", "--model", str(tiny_listening_model), "--as-fast-as-possible",
                "--steps", "3")
    assert r.exit_code == 0, r.output
    wav, sr = sf.read(str(out / "speech.wav"))
    motion = np.load(out / "motion.npz")
    meta = json.loads((out / "meta.json").read_text())
    stats = json.loads((out / "live_stats.json").read_text())
    assert sr == K.SAMPLE_RATE and len(wav) == motion["face"].shape[0] * K.HOP_LENGTH  # one clock
    assert motion["face"].shape[1] == 9 and motion["head_pose"].shape == (len(motion["face"]), 7)
    assert len(wav) / sr >= 2.0  # the whole recording, and the line said at 1.0 s
    types = [e["type"] for e in meta["events"]]
    assert types[:1] == ["say_start"] and "say_end" in types and meta["says"][0]["at"] == 1.0
    assert meta["preview"].startswith("participant video") and (out / "preview.mp4").stat().st_size > 0
    assert stats["drift"] == 0.0 and len(stats["first_audio_latency"]) == 1 and stats["recognizer"]["audio_s"] >= 2.0
    assert stats["steps"] == 3  # --steps reaches the sampler and is recorded with the numbers
    assert meta["temperature"] == 1.0 and meta["token_gain"] == 1.0  # the model's sampling settings, recorded


@pytest.mark.parametrize("args, message", [
    (["--participant-audio", "missing.wav"], "missing.wav"),
    (["--say", "Hi.", "--say", "Bye."], "2 --say but 1 --at"),
    (["--say", "Hi.", "--at", "2.5"], "outside the participant audio"),
    (["--say", "", "--at", "1"], "--say ''"),
])
def test_bad_input_is_one_line_and_writes_nothing(tiny_listening_model: Path, user_wav: Path, tmp_path: Path,
                                                 args: list[str], message: str) -> None:
    out = tmp_path / "out"
    base = ["-o", str(out), "--model", str(tiny_listening_model), "--as-fast-as-possible"]
    if "--participant-audio" not in args:
        base += ["--participant-audio", str(user_wav)]
    if args[:2] == ["--say", "Hi."] and "--at" not in args:
        base += ["--at", "1"]
    r = _invoke(*base, *args)
    assert r.exit_code == 2, r.output
    assert message in " ".join(r.output.split()) and "Traceback" not in r.output
    assert not out.exists()


def test_video_without_a_face_goes_on_audio_only(tiny_listening_model: Path, user_wav: Path, tmp_path: Path) -> None:
    from avflow_cli.render.video import encode_mp4

    video = tmp_path / "wall.mp4"
    encode_mp4(video, (np.full((64, 64, 3), 90, np.uint8) for _ in range(30)), 64, 15.0)
    out = tmp_path / "out"
    r = _invoke("-o", str(out), "--participant-audio", str(user_wav), "--participant-video", str(video),
                "--model", str(tiny_listening_model), "--as-fast-as-possible", "--no-preview")
    assert r.exit_code == 0, r.output
    said = " ".join(r.output.split())  # the console wraps long lines
    assert "no face found" in said and "audio-only" in said
    assert json.loads((out / "meta.json").read_text())["participant_video"] is None


@pytest.mark.parametrize("sig", [signal.SIGTERM, pytest.param(signal.SIGINT, marks=pytest.mark.slow)])
def test_stop_mid_run_leaves_a_playable_output(tiny_listening_model: Path, tmp_path: Path, sig: int) -> None:
    """Paced in real time on 8 s of audio, stopped after ~2 s of output: a complete folder up to then."""
    t = np.arange(8 * 16000) / 16000
    wav = tmp_path / "long.wav"
    sf.write(str(wav), (0.2 * np.sin(2 * np.pi * 200 * t)).astype(np.float32), 16000)
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "avflow_cli.cli.main", "live", "-o", str(out), "--participant-audio",
                             str(wav), "--model", str(tiny_listening_model), "--say", "Hello there.", "--at", "0.5"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen = []
    for line in proc.stdout:  # wait for the run itself (the model loads first)
        seen.append(line)
        if "listening" in line:
            break
    assert proc.poll() is None, "".join(seen)
    time.sleep(2.0)
    proc.send_signal(sig)
    output = "".join(seen) + proc.communicate(timeout=120)[0]
    assert proc.returncode == 128 + sig, output
    assert "stopped at" in output
    audio, sr = sf.read(str(out / "speech.wav"))
    motion = np.load(out / "motion.npz")
    assert 0.5 < len(audio) / sr < 7.5 and len(audio) == len(motion["face"]) * K.HOP_LENGTH
    assert json.loads((out / "meta.json").read_text())["stopped_early"] is True
    assert (out / "preview.mp4").stat().st_size > 0
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
