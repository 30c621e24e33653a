"""AV-Flow 50 h dataset import on a tiny tree in the published layout (docs/release_format.md §6)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from avflow_cli.data.importers import avflow50h as H
from avflow_cli.errors import InputFileError

N = 45  # 1.5 s at 30 fps


def _rotations(rng: np.random.Generator, n: int) -> np.ndarray:
    q = rng.normal(size=(n, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    w, x, y, z = q.T
    return np.stack(
        [
            np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
            np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
            np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1),
        ],
        -2,
    )


def make_segment(root: Path, seg: str, rng: np.random.Generator, *, participant: bool) -> dict:
    pose = np.zeros((N, 4, 4), np.float32)
    pose[:, :3, :3] = _rotations(rng, N)
    pose[:, :3, 3] = rng.normal(0, 50, (N, 3)) + [0, 0, 1000]
    pose[:, 3, 3] = 1
    expr = rng.normal(size=(N, 256)).astype(np.float32)
    tokens = rng.normal(size=(2, 75, 29)).astype(np.float32)
    for sub in ("audio", "expression_codes", "headpose", H.TOKENS_DIR, str(H.SMIRK_DIR)):
        (root / sub).mkdir(parents=True, exist_ok=True)
    sf.write(root / "audio" / f"{seg}.wav", rng.normal(0, 0.1, (N * 1600, 2)).astype(np.float32), 48000, subtype="PCM_16")
    np.save(root / "expression_codes" / f"{seg}.npy", expr)
    np.save(root / "headpose" / f"{seg}--headpose.npy", pose)
    np.save(root / H.TOKENS_DIR / f"{seg}.npy", tokens)
    out = {"pose": pose, "expr": expr, "tokens": tokens}
    if participant:
        out["p_expr"] = rng.normal(size=(N, 55)).astype(np.float32)
        out["p_head"] = rng.normal(size=(N, 3)).astype(np.float32)
        np.save(root / H.SMIRK_DIR / f"{seg}--expression.npy", out["p_expr"])
        np.save(root / H.SMIRK_DIR / f"{seg}--headpose.npy", out["p_head"])
    return out


@pytest.fixture()
def tree(tmp_path: Path) -> tuple[Path, dict]:
    rng = np.random.default_rng(0)
    root = tmp_path / "download" / "50h_dataset"
    segs = {
        "20240301--1000": make_segment(root, "20240301--1000", rng, participant=True),
        "20240509--1052": make_segment(root, "20240509--1052", rng, participant=True),
        "20240302--1100": make_segment(root, "20240302--1100", rng, participant=False),
    }
    stats = root / H.SMIRK_DIR / "stats"
    stats.mkdir(parents=True)
    for part, dim in (("expression", 55), ("headpose", 3)):
        np.save(stats / f"{part}_min.npy", -np.ones(dim, np.float32))
        np.save(stats / f"{part}_max.npy", np.ones(dim, np.float32) * 2)
    return tmp_path / "download", segs


def test_import_50h_layout(tree: tuple[Path, dict], tmp_path: Path) -> None:
    from avflow_cli.data.prep import check_session, find_sessions

    src, segs = tree
    out = tmp_path / "sessions"
    report = H.import_avflow50h(src, out)
    assert sorted(report.written) == sorted(segs)
    s = out / "20240301--1000"
    meta = json.loads((s / "session.json").read_text())
    assert (meta["source"], meta["face_dim"], meta["split"], meta["translation_units"]) == ("avflow50h", 256, "train", "mm")
    assert meta["participant_smirk_split"] == {"expression": 55, "headpose": 3}
    assert json.loads((out / "20240509--1052" / "session.json").read_text())["split"] == "val"
    seg = segs["20240301--1000"]
    np.testing.assert_allclose(np.load(s / "head_rot.npy"), seg["pose"][:, :3, :3], atol=1e-6)
    np.testing.assert_allclose(np.load(s / "head_trans.npy"), seg["pose"][:, :3, 3], rtol=1e-6)
    np.testing.assert_array_equal(np.load(s / "face_codes.npy"), seg["expr"])
    np.testing.assert_array_equal(np.load(s / "tokens_actor.npy"), seg["tokens"][0])
    np.testing.assert_array_equal(np.load(s / "tokens_participant.npy"), seg["tokens"][1])
    smirk = np.load(s / "participant_smirk.npy")
    assert smirk.shape == (N, 58)
    np.testing.assert_array_equal(smirk, np.concatenate([seg["p_expr"], seg["p_head"]], axis=1))
    assert not (out / "20240302--1100" / "participant_smirk.npy").exists()
    stats = np.load(out / "participant_smirk_stats.npz")
    assert stats["min"].shape == (58,) and int(stats["expression_dim"]) == 55
    for session in find_sessions(out):
        check_session(session, tmp_path / "work")


def test_release_skip_rule_and_errors(tree: tuple[Path, dict], tmp_path: Path) -> None:
    src, _ = tree
    report = H.import_avflow50h(src / "50h_dataset", tmp_path / "a", require_participant=True)
    assert report.skipped == [("20240302--1100", "no participant SMIRK files")]
    assert len(report.written) == 2
    root = src / "50h_dataset"
    np.save(root / "headpose" / "20240301--1000--headpose.npy", np.zeros((N, 3, 3), np.float32))
    with pytest.raises(InputFileError, match=r"--headpose\.npy: expected \(N, 3\|4, 4\)"):
        H.import_avflow50h(src, tmp_path / "b")
    (root / "audio" / "20240301--1000.wav").unlink()
    np.save(root / "headpose" / "20240301--1000--headpose.npy", np.tile(np.eye(4, dtype=np.float32), (N, 1, 1)))
    with pytest.raises(InputFileError, match=r"20240301--1000\.wav: file not found"):
        H.import_avflow50h(src, tmp_path / "b")
    with pytest.raises(InputFileError, match="not the 50 h dataset"):
        H.import_avflow50h(tmp_path / "a", tmp_path / "c")
