"""Synthesis helpers that need no trained model: sentence splitting, resampling, previews, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from avflow_cli import constants as K
from avflow_cli.cli.main import app
from avflow_cli.data.resample import resample_to_fps
from avflow_cli.preview import quaternion_to_euler_deg
from avflow_cli.synth import MAX_SENTENCE_CHARS, split_sentences

runner = CliRunner()


def test_split_sentences_keeps_text_and_bounds_length() -> None:
    text = "Hello there. How are you? Fine! " + "word, " * 120
    chunks = split_sentences(text)
    assert chunks[:3] == ["Hello there.", "How are you?", "Fine!"]
    assert all(len(c) <= MAX_SENTENCE_CHARS + 1 for c in chunks)
    assert "".join(chunks).replace(" ", "") == text.strip().replace(" ", "")
    assert split_sentences("   ") == []


def test_resample_to_preview_rate_preserves_duration_and_linear_signals() -> None:
    t = np.arange(int(2 * K.FPS)) / K.FPS
    values = np.stack([t, 2 * t + 1], axis=1)  # linear in time
    out = resample_to_fps(values, K.FPS, dst_rate=30.0)
    n_out = int(len(t) / K.FPS * 30.0)  # whole frames of the same duration
    assert out.shape == (n_out, 2)
    t30 = np.arange(n_out) / 30.0
    np.testing.assert_allclose(out[:, 0], t30, atol=1e-5)
    np.testing.assert_allclose(out[:, 1], 2 * t30 + 1, atol=1e-5)


def test_quaternion_to_euler_recovers_single_axis_rotations() -> None:
    angle = np.radians(30.0)
    quats = np.array([
        [np.cos(angle / 2), np.sin(angle / 2), 0, 0],  # roll
        [np.cos(angle / 2), 0, np.sin(angle / 2), 0],  # pitch
        [np.cos(angle / 2), 0, 0, np.sin(angle / 2)],  # yaw
    ])
    np.testing.assert_allclose(quaternion_to_euler_deg(quats), 30.0 * np.eye(3), atol=1e-6)


@pytest.mark.parametrize(
    "args, message",
    [
        (["synth", "hello", "-o", "OUT", "--model", "MISSING"], "no AV-Flow model here"),
        (["synth", "   ", "-o", "OUT"], "empty text"),
        (["synth", "-o", "OUT"], "give either TEXT or --file"),
        (["synth", "hi", "--file", "x.txt", "-o", "OUT"], "give either TEXT or --file"),
        (["synth", "--file", "MISSING.txt", "-o", "OUT"], "file not found"),
    ],
)
def test_synth_user_errors_are_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    args = [a.replace("OUT", str(tmp_path / "out")).replace("MISSING", str(tmp_path / "missing")) for a in args]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(__import__("shutil").which("ffmpeg") is None, reason="needs ffmpeg")
def test_plot_preview_is_an_h264_video_with_the_speech(tmp_path: Path) -> None:
    import subprocess

    from avflow_cli.preview import PREVIEW_FPS, write_preview
    from avflow_cli.synth import SynthesisResult

    t, sr = int(K.FPS), 16000  # one second
    rng = np.random.default_rng(0)
    result = SynthesisResult(
        text="plots", seed=0, steps=1, tokens=np.zeros((t, K.TOKEN_DIM), np.float32), mel=rng.normal(size=(t, K.N_MELS)),
        face=rng.normal(size=(t, 16)), head_latent=np.zeros((t, 8)), head_pose=None,
        wav=(0.1 * np.sin(np.arange(sr) / sr * 2 * np.pi * 220)).astype(np.float32), sample_rate=sr, components={},
    )
    path = tmp_path / "preview.mp4"
    assert write_preview(path, result, None) == "plots"
    probe = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_type,codec_name,nb_frames",
                            "-of", "csv=p=0", str(path)], capture_output=True, text=True, check=True).stdout.split()
    assert f"h264,video,{int(t / K.FPS * PREVIEW_FPS)}" in probe and any(s.startswith("aac,audio") for s in probe)
