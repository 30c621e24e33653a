"""Atomic writes: all-or-nothing, and outputs get the normal umask permissions."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from avflow_cli.errors import AvflowError
from avflow_cli import fsutil
from avflow_cli.fsutil import OUTPUT_MARKER, atomic_dir, atomic_path, check_output_dir, ensure_writable_dir, output_kind


def test_atomic_path_writes_whole_file_with_umask_mode(tmp_path: Path) -> None:
    target = tmp_path / "a.txt"
    with atomic_path(target) as tmp:
        tmp.write_text("hello")
        assert not target.exists()
    assert target.read_text() == "hello"
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~mask


def test_atomic_path_failure_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError):
        with atomic_path(tmp_path / "b.txt") as tmp:
            tmp.write_text("partial")
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_atomic_dir_replaces_whole_directory(tmp_path: Path) -> None:
    target = tmp_path / "out"
    with atomic_dir(target, kind="synth") as tmp:
        (tmp / "old.txt").write_text("old")
    with atomic_dir(target, kind="synth") as tmp:
        (tmp / "new.txt").write_text("new")
    assert sorted(p.name for p in target.iterdir()) == [OUTPUT_MARKER, "new.txt"]
    assert output_kind(target) == "synth"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    with pytest.raises(RuntimeError):
        with atomic_dir(target, kind="synth") as tmp:
            (tmp / "half.txt").write_text("x")
            raise RuntimeError("boom")
    assert sorted(p.name for p in target.iterdir()) == [OUTPUT_MARKER, "new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_atomic_dir_refuses_what_avflow_did_not_write(tmp_path: Path) -> None:
    user = tmp_path / "user"
    user.mkdir()
    (user / "mine.txt").write_text("mine")
    afile = tmp_path / "a.txt"
    afile.write_text("text")
    other = tmp_path / "other"
    with atomic_dir(other, kind="session") as tmp:
        (tmp / "audio.wav").write_text("a")
    for path, message in ((user, "holds files avflow did not write"), (afile, "exists and is a file"),
                          (other, "holds an avflow session folder")):
        with pytest.raises(AvflowError, match=message):
            with atomic_dir(path, kind="synth") as tmp:
                raise AssertionError("the check comes before the work")
    assert (user / "mine.txt").read_text() == "mine" and afile.read_text() == "text"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "other", "user"]  # nothing half-written
    with atomic_dir(user, kind="synth", force=True) as tmp:
        (tmp / "new.txt").write_text("new")
    # --force writes into the user's folder; it never wipes it
    assert sorted(p.name for p in user.iterdir()) == [OUTPUT_MARKER, "mine.txt", "new.txt"]
    assert (user / "mine.txt").read_text() == "mine"
    (tmp_path / "empty").mkdir()
    assert check_output_dir(tmp_path / "empty", kind="synth") == tmp_path / "empty"


def test_atomic_dir_rechecks_before_the_swap(tmp_path: Path) -> None:
    target = tmp_path / "out"
    with pytest.raises(AvflowError, match="did not write"):
        with atomic_dir(target, kind="synth") as tmp:
            target.mkdir()  # a user's folder appears while the job runs
            (target / "theirs.txt").write_text("x")
    assert (target / "theirs.txt").read_text() == "x"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_protected_folders_are_never_replaced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = tmp_path / "models" / "avflow"
    model.mkdir(parents=True)
    (model / "config.json").write_text("{}")
    for path in (model, model.parent, model / "config.json", model / "sub" / ".."):
        with pytest.raises(AvflowError, match="which this command reads"):
            check_output_dir(path, kind="synth", force=True, protect=[model])
    assert check_output_dir(model / "new", kind="synth", protect=[model]) == model / "new"
    monkeypatch.chdir(model)
    with pytest.raises(AvflowError, match="current, home or root"):
        check_output_dir(tmp_path, force=True)


def test_stale_temporaries_of_dead_processes_are_removed(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = fsutil._host_tag()
    stale_file = tmp_path / f".shard_000.{host}-{dead.pid}.abc123.tmp.h5"
    stale_dir = tmp_path / f".corpus.{host}-{dead.pid}.x_9.tmp"
    live = tmp_path / f".shard_001.{host}-{os.getpid()}.abc123.tmp.h5"
    foreign = tmp_path / f".shard_002.otherhost-{dead.pid}.abc123.tmp.h5"
    user = tmp_path / "shard_003.h5"
    for p in (stale_file, live, foreign, user):
        p.write_text("x")
    stale_dir.mkdir()
    (stale_dir / "session_000").mkdir()
    with atomic_path(tmp_path / "shard_004.h5") as tmp:  # the first write into a folder cleans it
        tmp.write_text("done")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, foreign.name, user.name, "shard_004.h5"])


def test_unwritable_dir_is_a_user_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a dir")
    with pytest.raises(AvflowError, match="cannot create output directory"):
        ensure_writable_dir(blocker / "sub")


def test_force_replaces_only_the_entries_written(tmp_path: Path) -> None:
    """A forced write into a user's folder swaps same-named entries (files and folders) one by one
    and keeps everything else; nothing of the staging is left beside it."""
    user = tmp_path / "user"
    (user / "sub").mkdir(parents=True)
    (user / "sub" / "old.txt").write_text("old")
    (user / "speech.wav").write_text("their take")
    (user / "notes.txt").write_text("keep me")
    with atomic_dir(user, kind="synth", force=True) as tmp:
        (tmp / "speech.wav").write_text("ours")
        (tmp / "sub").mkdir()
        (tmp / "sub" / "new.txt").write_text("new")
    assert (user / "speech.wav").read_text() == "ours" and (user / "notes.txt").read_text() == "keep me"
    assert sorted(p.name for p in (user / "sub").iterdir()) == ["new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["user"]


def test_owned_names_replace_only_themselves_in_an_own_folder(tmp_path: Path) -> None:
    """With ``owned``, a re-run into its own folder replaces its files, removes its stale ones
    (an old preview) and keeps what the user added (their render next to the speech)."""
    out = tmp_path / "out"
    owned = ("speech.wav", "preview.mp4", "meta.json")
    with atomic_dir(out, kind="synth", owned=owned) as tmp:
        for name in owned:
            (tmp / name).write_text("first")
    (out / "face.mp4").write_text("the user's render")
    with atomic_dir(out, kind="synth", owned=owned) as tmp:
        (tmp / "speech.wav").write_text("second")
        (tmp / "meta.json").write_text("second")
    assert sorted(p.name for p in out.iterdir()) == [OUTPUT_MARKER, "face.mp4", "meta.json", "speech.wav"]
    assert (out / "speech.wav").read_text() == "second" and (out / "face.mp4").read_text() == "the user's render"


def test_output_file_rule(tmp_path: Path) -> None:
    """An output file: new, or existing with force; never an input (even through a link), a
    path inside an input folder, or a folder."""
    from avflow_cli.fsutil import check_output_file

    src = tmp_path / "speech.wav"
    src.write_text("input")
    folder = tmp_path / "avatar"
    folder.mkdir()
    link = tmp_path / "link.wav"
    link.symlink_to(src)
    assert check_output_file(tmp_path / "new.mp4", protect=[src]) == tmp_path / "new.mp4"
    with pytest.raises(AvflowError, match="exists; choose a new name or pass --force"):
        check_output_file(src)
    assert check_output_file(src, force=True) == src
    for path in (src, link):
        with pytest.raises(AvflowError, match="which this command reads"):
            check_output_file(path, force=True, protect=[src])
    with pytest.raises(AvflowError, match="is inside"):
        check_output_file(folder / "x.mp4", force=True, protect=[folder])
    with pytest.raises(AvflowError, match="is a folder"):
        check_output_file(folder, force=True)
    assert src.read_text() == "input"
