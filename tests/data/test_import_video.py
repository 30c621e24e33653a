"""Monocular video → actor session, and the `prep smirk` / `prep import` command lines."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from avflow_cli.cli.main import app
from avflow_cli.vision import smirk as S


def _portrait() -> np.ndarray:
    import cv2
    import matplotlib

    path = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    if not path.is_file():
        pytest.skip("matplotlib's sample image grace_hopper.jpg is not installed")
    return cv2.resize(cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB), (256, 300), interpolation=cv2.INTER_AREA)


@pytest.fixture(scope="module")
def talk(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A 1 s, 15 fps talking-head clip (face, 3 faceless frames, face) with a tone, and random SMIRK weights."""
    folder = tmp_path_factory.mktemp("talk")
    face = _portrait()
    frames = np.stack([face] * 6 + [np.full_like(face, 90)] * 3 + [face] * 6)  # (15, 300, 256, 3)
    video = folder / "anna.mp4"
    cmd = ["ffmpeg", "-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", "256x300", "-r", "15", "-i", "-",
           "-f", "lavfi", "-i", "sine=frequency=330:sample_rate=44100:duration=1", "-c:v", "mpeg4", "-q:v", "2",
           "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(video)]
    subprocess.run(cmd, input=frames.tobytes(), check=True)
    torch.manual_seed(0)
    ckpt = folder / "SMIRK_em1.pt"
    torch.save(S.release_state_dict(S.SmirkEncoder()), ckpt)
    return video, ckpt


def test_video_to_actor_session(talk: tuple[Path, Path], tmp_path: Path) -> None:
    from avflow_cli.audio.io import read_audio
    from avflow_cli.data.importers.video import import_video
    from avflow_cli.data.prep import check_session, find_sessions

    video, ckpt = talk
    report = import_video(video, tmp_path / "sessions", ckpt, fps=15.0, batch=8)
    assert report.written == ["anna"]
    s = tmp_path / "sessions" / "anna"
    meta = json.loads((s / "session.json").read_text())
    assert meta["channels"] == {"actor": 0} and meta["face_dim"] == 53 and meta["face_fps"] == 15.0
    valid = np.load(s / "face_valid.npy")
    np.testing.assert_array_equal(valid, [True] * 6 + [False] * 3 + [True] * 6)
    face, rot = np.load(s / "face_codes.npy"), np.load(s / "head_rot.npy")
    assert face.shape == (15, 53) and rot.shape == (15, 3, 3)
    np.testing.assert_allclose(np.einsum("nji,njk->nik", rot, rot), np.broadcast_to(np.eye(3), rot.shape), atol=1e-5)
    assert not np.any(np.load(s / "head_trans.npy"))
    np.testing.assert_allclose(face[7], (face[5] + face[9]) / 2, rtol=1e-5, atol=1e-6)  # faceless: interpolated
    audio, sr = read_audio(s / "audio.wav")
    assert audio.shape[0] == 1 and sr == 48000 and abs(audio.shape[1] / sr - 1.0) < 0.05
    check_session(find_sessions(tmp_path / "sessions")[0], tmp_path / "work")
    assert import_video(video, tmp_path / "sessions", ckpt, fps=15.0).existing == ["anna"]


def test_cli_prep_smirk_and_import(talk: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    video, ckpt = talk
    runner = CliRunner()
    out = tmp_path / "p_smirk.npy"
    res = runner.invoke(app, ["prep", "smirk", str(video), "-o", str(out), "--checkpoint", str(ckpt), "--batch", "4"])
    assert res.exit_code == 0, res.output
    feats = np.load(out)
    valid = np.load(tmp_path / "p_smirk.valid.npy")
    meta = json.loads((tmp_path / "p_smirk.json").read_text())
    assert feats.shape == (15, 56) and valid.sum() == 12 and meta["fps"] == 15.0
    res = runner.invoke(app, ["prep", "smirk", str(video), "-o", str(out), "--checkpoint", str(ckpt)])
    assert res.exit_code == 0 and "exists, kept" in res.output
    monkeypatch.setenv("AVFLOW_CHECKPOINTS", str(tmp_path / "empty"))
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    res = runner.invoke(app, ["prep", "import", "video", str(video), str(tmp_path / "s"), "--tracker", "smirk"])
    assert res.exit_code == 2 and "SMIRK_em1.pt not found" in res.output
    assert not (tmp_path / "s").exists()
    bad = tmp_path / "bad.pt"
    bad.write_bytes(ckpt.read_bytes()[:1000])
    res = runner.invoke(app, ["prep", "smirk", str(video), "-o", str(tmp_path / "b.npy"), "--checkpoint", str(bad)])
    assert res.exit_code == 2 and "truncated" in res.output
    assert not (tmp_path / "b.npy").exists()


def test_import_video_offline_uses_the_landmark_tracker(talk: tuple[Path, Path], tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """No SMIRK weights anywhere: the dlib landmark tracker stands in, said in the output and session.json."""
    monkeypatch.setenv("AVFLOW_CHECKPOINTS", str(tmp_path / "empty"))
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    video, _ = talk
    res = CliRunner().invoke(app, ["prep", "import", "video", str(video), str(tmp_path / "s"), "--fps", "15"])
    assert res.exit_code == 0, res.output
    said = " ".join(res.output.split())  # rich wraps long lines
    assert "SMIRK_em1.pt not found" in said and "offline face tracker" in said
    s = tmp_path / "s" / "anna"
    meta = json.loads((s / "session.json").read_text())
    assert meta["face_dim"] == 53 and meta["face_fps"] == 15.0
    assert meta["smirk_checkpoint"] is None and "dlib" in meta["face_tracker"]
    assert "not SMIRK" in meta["face_code"]
    valid = np.load(s / "face_valid.npy")
    assert valid.shape == (15,) and valid[:6].all() and valid[9:].all()  # (it holds the last box over a few faceless frames)
    rot = np.load(s / "head_rot.npy")
    np.testing.assert_allclose(np.einsum("nji,njk->nik", rot, rot), np.broadcast_to(np.eye(3), rot.shape), atol=1e-5)
    assert np.isfinite(np.load(s / "face_codes.npy")).all()
    res = CliRunner().invoke(app, ["prep", "import", "video", str(video), str(tmp_path / "s2"), "--tracker", "landmarks",
                                   "--checkpoint", str(tmp_path / "x.pt")])
    assert res.exit_code == 2 and "landmark tracker takes none" in res.output and not (tmp_path / "s2").exists()


@pytest.mark.parametrize("command", [["prep", "import", "video", "VIDEO", "OUT"], ["prep", "smirk", "VIDEO", "-o", "OUT/x.npy"]])
def test_missing_video_is_reported_before_the_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         command: list[str]) -> None:
    monkeypatch.setenv("AVFLOW_CHECKPOINTS", str(tmp_path / "empty"))  # no SMIRK weights anywhere either
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    args = [a.replace("VIDEO", str(tmp_path / "talk.mp4")).replace("OUT", str(tmp_path / "out")) for a in command]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 2 and "talk.mp4: file not found" in res.output and "SMIRK" not in res.output
    assert not (tmp_path / "out").exists()
