"""End to end: a session tree (flite speech + smooth face codes/rotations) → shards → verify."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

from avflow_cli import constants as K
from avflow_cli.cli.main import app
from avflow_cli.data import prep
from avflow_cli.data.schema import ShardIndex
from avflow_cli.data.shards import read_clip
from avflow_cli.data.verify import shard_info, verify_shards
from avflow_cli.errors import AvflowError

runner = CliRunner()


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory, make_tree: Callable[..., Path]) -> Path:
    return make_tree(tmp_path_factory.mktemp("corpus"), num_sessions=4)


@pytest.fixture(scope="module")
def prepped(tree: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("prep")
    result = runner.invoke(app, ["prep", "all", str(tree), str(out), "--max-clip-seconds", "5", "--val-fraction", "0.25", "--test-fraction", "0.25"])
    assert result.exit_code == 0, result.output
    return out


def test_all_writes_work_files_and_shards(prepped: Path) -> None:
    sessions = sorted(p.name for p in (prepped / "sessions").iterdir())
    assert sessions == ["day0__s00", "day0__s02", "day1__s01", "day1__s03"]
    for name in ("actor.wav", "participant.wav", "vad.json", "mel.npy", "tokens.npy", "p_tokens.npy", "head_pose.npy"):
        assert (prepped / "sessions" / "day0__s00" / name).is_file(), name
    assert (prepped / "shards" / "face_decoder.npz").is_file()
    index = ShardIndex.load(prepped / "shards")
    assert {c.split for c in index.clips} == {"train", "val", "test"}
    assert index.dims == {"mel": 80, "tokens": 29, "face": 8, "head_pose": 7, "p_tokens": 29, "p_smirk": 56, "valid": 1}
    assert index.extractors["tokens"].startswith("alignment")
    by_session: dict[str, list] = {}
    for c in index.clips:
        by_session.setdefault(c.session, []).append(c)
        assert c.frames <= int(5 * K.FPS)
    for clips in by_session.values():  # clips tile their session without gaps
        starts = [c.start_frame for c in sorted(clips, key=lambda c: c.start_frame)]
        ends = [c.start_frame + c.frames for c in sorted(clips, key=lambda c: c.start_frame)]
        assert starts[0] == 0 and starts[1:] == ends[:-1]
        assert len({c.split for c in clips}) == 1  # split by session, never inside one


def test_streams_are_aligned_at_fps(prepped: Path, tree: Path) -> None:
    index = ShardIndex.load(prepped / "shards")
    clip = next(c for c in index.clips if c.session == "day0__s00" and c.start_frame == 0)
    data = read_clip(prepped / "shards", clip)
    face30 = np.load(tree / "day0" / "s00" / "face_codes.npy")
    # face frame j at FPS is the linear interpolation of the 30 fps codes at time j / FPS
    j = 100
    pos = j / K.FPS * 30.0
    lo = int(pos)
    expect = face30[lo] * (1 - (pos - lo)) + face30[lo + 1] * (pos - lo)
    np.testing.assert_allclose(data["face"][j], expect, atol=1e-5)
    from avflow_cli.data.resample import resample_mask

    valid30 = np.load(tree / "day0" / "s00" / "face_valid.npy")
    clips = sorted((c for c in index.clips if c.session == "day0__s00"), key=lambda c: c.start_frame)
    valid = np.concatenate([read_clip(prepped / "shards", c, ["valid"])["valid"] for c in clips])
    np.testing.assert_array_equal(valid, resample_mask(valid30, 30.0, len(valid)))
    assert 5 * K.FPS / 30 <= (~valid).sum() <= 7 * K.FPS / 30 + 2  # the 5 untracked frames, on the new clock
    np.testing.assert_allclose(np.linalg.norm(data["head_pose"][:, :4], axis=1), 1.0, atol=1e-5)
    mel = np.load(prepped / "sessions" / "day0__s00" / "mel.npy")
    np.testing.assert_array_equal(data["mel"], mel[: clip.frames])


def test_stats_are_train_only(prepped: Path) -> None:
    index = ShardIndex.load(prepped / "shards")
    mels = [read_clip(prepped / "shards", c, ["mel"])["mel"] for c in index.split("train")]
    everything = np.concatenate(mels)
    np.testing.assert_allclose(index.stats["mel"].mean, everything.mean(0), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(index.stats["mel"].std, everything.std(0), rtol=1e-3, atol=1e-4)


def test_verify_and_info(prepped: Path) -> None:
    report = verify_shards(prepped / "shards")
    assert report.ok, report.problems
    assert report.clips_checked == len(ShardIndex.load(prepped / "shards").clips)
    info = shard_info(prepped / "shards")
    assert info["sessions"] == 4 and info["splits"]["val"]["sessions"] == 1 and info["splits"]["test"]["sessions"] == 1
    result = runner.invoke(app, ["data", "info", str(prepped / "shards")])
    assert result.exit_code == 0 and "p_smirk" in result.output and "train" in result.output
    result = runner.invoke(app, ["data", "verify", str(prepped / "shards")])
    assert result.exit_code == 0 and "ok" in result.output


def test_rerun_skips_finished_work(prepped: Path, tree: Path) -> None:
    files = [prepped / "sessions" / "day0__s00" / "mel.npy", prepped / "shards" / "shard-00000.h5", prepped / "shards" / "index.json"]
    before = [f.stat().st_mtime_ns for f in files[:2]]
    result = runner.invoke(app, ["prep", "all", str(tree), str(prepped), "--max-clip-seconds", "5", "--val-fraction", "0.25", "--test-fraction", "0.25"])
    assert result.exit_code == 0, result.output
    assert [f.stat().st_mtime_ns for f in files[:2]] == before


def test_array_job_parts_merge_to_the_same_index(prepped: Path, tree: Path, tmp_path: Path) -> None:
    shard_dir = tmp_path / "array"
    args = ["--shard-dir", str(shard_dir), "--num-shards", "3", "--max-clip-seconds", "5", "--val-fraction", "0.25", "--test-fraction", "0.25"]
    for i in (2, 0):
        result = runner.invoke(app, ["prep", "shards", str(tree), str(prepped), "--shard-index", str(i), *args])
        assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["prep", "index", str(shard_dir)])
    assert result.exit_code == 2 and "[1]" in result.output  # shard 1 not written yet
    assert not (shard_dir / "index.json").exists()
    assert runner.invoke(app, ["prep", "shards", str(tree), str(prepped), "--shard-index", "1", *args]).exit_code == 0
    assert runner.invoke(app, ["prep", "index", str(shard_dir)]).exit_code == 0
    merged, single = ShardIndex.load(shard_dir), ShardIndex.load(prepped / "shards")
    assert sorted((c.id, c.split, c.frames) for c in merged.clips) == sorted((c.id, c.split, c.frames) for c in single.clips)
    assert len({c.shard for c in merged.clips}) == 3
    np.testing.assert_allclose(merged.stats["face"].mean, single.stats["face"].mean, rtol=1e-6)
    np.testing.assert_allclose(merged.stats["tokens"].std, single.stats["tokens"].std, rtol=1e-6)
    assert verify_shards(shard_dir).ok


def test_verify_finds_corruption(prepped: Path, tmp_path: Path) -> None:
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(prepped / "shards", broken)
    index = ShardIndex.load(broken)
    clip = index.clips[0]
    with h5py.File(broken / clip.shard, "a") as f:
        del f[clip.id]["tokens"]
        data = f[clip.id]["face"][:]
        data[3, 0] = np.nan
        del f[clip.id]["face"]
        f[clip.id].create_dataset("face", data=data)
    problems = verify_shards(broken).problems
    assert any("tokens missing" in p for p in problems) and any("non-finite" in p for p in problems)
    result = runner.invoke(app, ["data", "verify", str(broken)])
    assert result.exit_code == 2 and "problem" in result.output


def test_splits_and_clips() -> None:
    names = [f"s{i}" for i in range(10)]
    splits = prep.assign_splits(names, 0.1, 0.1, seed=0)
    assert splits == prep.assign_splits(list(reversed(names)), 0.1, 0.1, seed=0)  # order does not matter
    assert sorted(splits.values()).count("val") == 1 and sorted(splits.values()).count("test") == 1
    three = prep.assign_splits(["a", "b", "c"], 0.01, 0.01)
    assert sorted(three.values()) == ["test", "train", "val"]
    assert set(prep.assign_splits(["a", "b"], 0.1, 0.1).values()) == {"train"}
    assert prep.clip_bounds(100, 40) == [(0, 33), (33, 67), (67, 100)]
    assert prep.clip_bounds(10, 40, min_frames=20) == []


def test_mono_actor_only_session(tmp_path: Path, make_session: Callable[..., Path]) -> None:
    """A video import: mono audio, no participant channel → actor streams only."""
    import soundfile as sf

    folder = make_session(tmp_path / "src", "mono")
    audio, sr = sf.read(str(folder / "audio.wav"))
    sf.write(str(folder / "audio.wav"), audio[:, 0], sr)
    meta = json.loads((folder / "session.json").read_text())
    meta["channels"] = {"actor": 0}
    (folder / "session.json").write_text(json.dumps(meta))
    index = prep.build_shards(folder, tmp_path / "out", prep.ShardOptions(val_fraction=0, test_fraction=0))
    assert "p_tokens" not in index.dims and "p_smirk" not in index.dims
    assert not (tmp_path / "out" / "sessions" / "mono" / "participant.wav").exists()


def test_force_recomputes(prepped: Path, tree: Path) -> None:
    session = prep.find_sessions(tree)[0]
    mel = prep.work_dir(prepped, session) / "mel.npy"
    before = mel.stat().st_mtime_ns
    prep.stage_mel(session, prepped)
    assert mel.stat().st_mtime_ns == before
    prep.stage_mel(session, prepped, force=True)
    assert mel.stat().st_mtime_ns > before


def test_vad_evaluate_option_decides_scoring(tree: Path, tmp_path: Path) -> None:
    session = str(tree / "day0" / "s00")
    for flag, out in (("--evaluate", tmp_path / "scored"), ("--no-evaluate", tmp_path / "plain")):
        result = runner.invoke(app, ["prep", "vad", session, str(out), flag])
        assert result.exit_code == 0, result.output
        summary = json.loads((out / "sessions" / "s00" / "vad.json").read_text())
        assert ("scores" in summary) == (flag == "--evaluate") == ("F1" in result.output)


def test_mel_from_is_one_name_in_cli_and_api(tree: Path, tmp_path: Path) -> None:
    session = prep.find_sessions(tree / "day0" / "s00")[0]
    raw = prep.stage_mel(session, tmp_path / "api", mel_from="raw")
    assert not (prep.work_dir(tmp_path / "api", session) / "vad.json").exists()  # raw: no VAD ran
    result = runner.invoke(app, ["prep", "mel", str(tree / "day0" / "s00"), str(tmp_path / "cli"), "--mel-from", "raw"])
    assert result.exit_code == 0, result.output
    np.testing.assert_array_equal(np.load(raw), np.load(prep.work_dir(tmp_path / "cli", session) / "mel.npy"))
    with pytest.raises(AvflowError, match="--mel-from must be one of vad, raw"):
        prep.stage_mel(session, tmp_path / "api", mel_from="clean", force=True)


def test_old_length_tolerance_name_is_a_hidden_alias(tree: Path, prepped: Path, tmp_path: Path) -> None:
    args = ["prep", "shards", str(tree), str(prepped), "--shard-dir", str(tmp_path / "s"), "--max-clip-seconds", "5",
            "--val-fraction", "0.25", "--test-fraction", "0.25"]
    old = runner.invoke(app, [*args, "--length-tolerance", "2"])
    assert old.exit_code == 0 and "--length-tolerance is deprecated" in old.output
    assert ShardIndex.load(tmp_path / "s").config["length_tolerance_s"] == 2.0
    bad = runner.invoke(app, [*args, "--length-tolerance-s", "-1"])
    assert bad.exit_code == 2 and "--length-tolerance-s must be" in bad.output
    assert "--length-tolerance " not in runner.invoke(app, ["prep", "shards", "--help"]).output
