"""Audio2Photoreal import on a tiny tree in the published layout (names, shapes, rates, channels)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from avflow_cli.data.importers import a2p as A
from avflow_cli.errors import InputFileError

T = 30  # frames per scene (1 s at 30 fps)


def make_scene(folder: Path, scene: str, rng: np.random.Generator, *, missing: list[int], tokens: bool = True) -> dict:
    """One scene exactly as the dataset ships it (plus av_flow's token file)."""
    body = rng.normal(0, 0.3, (T, A.BODY_POSE_DIM)).astype(np.float32)
    face = rng.normal(0, 1, (T, 256)).astype(np.float32)
    face[missing] = 1e6  # corrupted codes at missing frames
    audio = (rng.normal(0, 0.1, (T * A.AUDIO_PER_FRAME, 2))).astype(np.float32)
    np.save(folder / f"{scene}_body_pose.npy", body)
    np.save(folder / f"{scene}_face_expression.npy", face)
    np.save(folder / f"{scene}_missing_face_frames.npy", np.array(missing, dtype=np.int64))
    sf.write(folder / f"{scene}_audio.wav", audio, 48000, subtype="PCM_16")
    if tokens:
        (folder / A.TOKENS_DIR).mkdir(exist_ok=True)
        np.save(folder / A.TOKENS_DIR / f"{scene}.npy", rng.normal(size=(2, 50, 29)).astype(np.float32))
    return {"body": body, "face": face}


@pytest.fixture()
def a2p_tree(tmp_path: Path) -> tuple[Path, dict]:
    rng = np.random.default_rng(0)
    subject = tmp_path / "dataset" / "PXB184"
    subject.mkdir(parents=True)
    torch.save({"pose_mean": torch.zeros(104), "code_mean": torch.zeros(256)}, subject / "data_stats.pth")
    scenes = {f"scene{i:02d}": make_scene(subject, f"scene{i:02d}", rng, missing=[3, 4, 5] if i == 1 else []) for i in range(1, 9)}
    make_scene(subject, "scene09", rng, missing=list(range(T)), tokens=False)  # every face frame missing
    return tmp_path / "dataset", scenes


def test_head_angles_round_trip() -> None:
    rng = np.random.default_rng(1)
    angles = np.concatenate([rng.uniform(-1.2, 1.2, (200, 3)), rng.normal(size=(200, 1))], axis=1)
    rot, trans = A.head_rt_from_angles(angles)
    np.testing.assert_allclose(np.einsum("nji,njk->nik", rot, rot), np.broadcast_to(np.eye(3), rot.shape), atol=1e-12)
    assert np.allclose(np.linalg.det(rot), 1.0)
    np.testing.assert_allclose(A.head_angles_from_rt(rot, trans), angles, atol=1e-10)
    # the matrix is Rx(a) · Ry(b) · Rz(c)
    a, b, c = 0.3, -0.2, 0.5
    rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    ry = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
    rz = np.array([[np.cos(c), -np.sin(c), 0], [np.sin(c), np.cos(c), 0], [0, 0, 1]])
    np.testing.assert_allclose(A.head_rt_from_angles(np.array([[a, b, c, 0.0]]))[0][0], rx @ ry @ rz, atol=1e-12)


def test_import_writes_sessions_prep_accepts(a2p_tree: tuple[Path, dict], tmp_path: Path) -> None:
    from avflow_cli.data.prep import check_session, find_sessions, stage_headpose

    src, scenes = a2p_tree
    out = tmp_path / "sessions"
    report = A.import_a2p(src, out)
    assert sorted(report.written) == [f"PXB184_scene{i:02d}" for i in range(1, 9)]
    assert report.skipped == [("PXB184_scene09", "every face frame is missing")]
    s1 = out / "PXB184_scene01"
    meta = json.loads((s1 / "session.json").read_text())
    assert meta["channels"] == {"actor": 0, "participant": 1}
    assert (meta["sample_rate"], meta["face_fps"], meta["face_dim"], meta["source"]) == (48000, 30.0, 256, "a2p")
    valid = np.load(s1 / "face_valid.npy")
    np.testing.assert_array_equal(np.flatnonzero(~valid), [3, 4, 5])
    face = np.load(s1 / "face_codes.npy")
    src_face = scenes["scene01"]["face"]
    np.testing.assert_allclose(face[valid], src_face[valid], rtol=1e-6)
    np.testing.assert_allclose(face[4], (src_face[2] + src_face[6]) / 2, rtol=1e-5, atol=1e-6)  # interpolated
    angles = scenes["scene01"]["body"][:, 12:16]
    np.testing.assert_allclose(np.load(s1 / "head_params.npy"), angles, rtol=1e-6)
    back = A.head_angles_from_rt(np.load(s1 / "head_rot.npy"), np.load(s1 / "head_trans.npy"))
    np.testing.assert_allclose(back, angles, atol=1e-5)
    assert (s1 / "audio.wav").read_bytes() == (src / "PXB184" / "scene01_audio.wav").read_bytes()
    tok = np.load(src / "PXB184" / A.TOKENS_DIR / "scene01.npy")
    np.testing.assert_array_equal(np.load(s1 / "tokens_participant.npy"), tok[1])
    splits = {p.name: json.loads((p / "session.json").read_text())["split"] for p in out.iterdir()}
    assert [splits[f"PXB184_scene{i:02d}"] for i in range(1, 9)] == ["train"] * 2 + ["val"] * 2 + ["test"] * 4
    sessions = find_sessions(out)
    assert len(sessions) == 8
    for s in sessions[:2]:
        check_session(s, tmp_path / "work")
    assert np.load(stage_headpose(sessions[0], tmp_path / "work")).shape == (T, 7)
    again = A.import_a2p(src / "PXB184", out, split_scheme="av_flow")  # a subject folder works too
    assert again.written == [] and len(again.existing) == 8


def test_av_flow_split_and_errors(a2p_tree: tuple[Path, dict], tmp_path: Path) -> None:
    src, _ = a2p_tree
    assert A.assign_splits(["a", "b", "c"], "av_flow") == {"a": "train", "b": "val", "c": "val"}
    np.save(src / "PXB184" / "scene02_face_expression.npy", np.zeros((T + 5, 256), np.float32))
    with pytest.raises(InputFileError, match=r"scene02_face_expression\.npy: 35 frames but scene02_body_pose\.npy has 30"):
        A.import_a2p(src, tmp_path / "o")
    assert not (tmp_path / "o" / "PXB184_scene02").exists()
    sf.write(src / "PXB184" / "scene02_audio.wav", np.zeros(T * 1600, np.float32), 48000)
    np.save(src / "PXB184" / "scene02_face_expression.npy", np.zeros((T, 256), np.float32))
    with pytest.raises(InputFileError, match="expected 2-channel 48000 Hz audio, got 1 ch"):
        A.import_a2p(src, tmp_path / "o")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputFileError, match="no Audio2Photoreal scenes"):
        A.import_a2p(tmp_path / "empty", tmp_path / "p")


def test_cli_link_audio_hard_links_and_the_old_name_still_works(a2p_tree: tuple[Path, dict], tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from avflow_cli.cli.main import app

    root, _ = a2p_tree
    runner = CliRunner()
    src_audio = root / "PXB184" / "scene01_audio.wav"
    for option, out in (("--link-audio", tmp_path / "new"), ("--link", tmp_path / "old")):
        result = runner.invoke(app, ["prep", "import", "a2p", str(root), str(out), option])
        assert result.exit_code == 0, result.output
        assert (out / "PXB184_scene01" / "audio.wav").stat().st_ino == src_audio.stat().st_ino  # one file, two names
        assert ("deprecated" in result.output) == (option == "--link")
    assert "--link " not in runner.invoke(app, ["prep", "import", "a2p", "--help"]).output  # the alias is hidden
