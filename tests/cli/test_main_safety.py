"""The CLI entry point: usage errors are one line (exit 2) for every command, and SIGTERM cleans
up like Ctrl-C (no temporaries beside outputs or in the temp dir; exit 128 + 15)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from avflow_cli import constants as K
from avflow_cli.cli.main import app

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("args", "words"), [
    (["synth", "hi", "-o", "x", "--speed", "20"], "avflow synth: Invalid value for '--speed'"),
    (["synth", "hi", "-o", "x", "--steps", "many"], "avflow synth: Invalid value for '--steps'"),
    (["synth", "hi"], "avflow synth: Missing option '-o' / '--out'"),
    (["render"], "avflow render: Missing argument"),
    (["render", "m.npz", "-o", "v.mp4", "--size", "2"], "avflow render: Invalid value for '--size'"),
    (["converse", "d.toml", "-o", "out", "--vocoder-typo"], "avflow converse: No such option: --vocoder-typo"),
    (["train", "vocoder", "-o", "run", "--lr", "fast"], "avflow train vocoder: Invalid value for '--lr'"),
    (["nosuch"], "avflow: No such command 'nosuch'"),
])
def test_usage_errors_are_one_line(args: list[str], words: str) -> None:
    res = CliRunner().invoke(app, args)
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert res.exit_code == 2, res.output
    assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0], res.output


def test_help_and_bare_groups_still_show_the_help() -> None:
    assert "Usage" in CliRunner().invoke(app, ["synth", "--help"]).output
    bare = CliRunner().invoke(app, ["train"])
    assert "Usage" in bare.output and bare.exit_code == 2


def test_sigterm_cleans_up_like_ctrl_c(tmp_path: Path) -> None:
    """A render killed by SIGTERM mid-video leaves no .tmp beside -o and no avflow-video-* folder."""
    from avflow_cli.render.demo_avatar import FaceDecoder

    decoder = FaceDecoder.create()
    decoder.save(tmp_path / "face_decoder.npz")
    frames = int(120 * K.FPS)  # two minutes of motion: long enough to be caught mid-work
    np.savez(tmp_path / "motion.npz", face=np.zeros((frames, decoder.dim), np.float32), fps=np.float64(K.FPS))
    temp, outdir = tmp_path / "temp", tmp_path / "videos"
    temp.mkdir()
    outdir.mkdir()
    env = {**os.environ, "PYTHONPATH": str(REPO), "TMPDIR": str(temp), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "avflow_cli.cli.main", "render", str(tmp_path / "motion.npz"),
                             "-o", str(outdir / "face.mp4"), "--decoder", str(tmp_path / "face_decoder.npz"),
                             "--size", "128", "--no-audio"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and proc.poll() is None:
        if any(".tmp" in p.name for p in outdir.iterdir()) and any(p.name.startswith("avflow-video-") for p in temp.iterdir()):
            break
        time.sleep(0.1)
    assert proc.poll() is None, proc.communicate()
    time.sleep(0.5)  # well inside the frame loop
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, err.decode()
    assert b"Traceback" not in err
    assert list(outdir.iterdir()) == []  # neither the video nor its temporary
    assert [p.name for p in temp.iterdir()] == []
