"""Atomic writes: all-or-nothing, and outputs get the normal umask permissions."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from avflow_cli.errors import AvflowError
from avflow_cli.fsutil import atomic_dir, atomic_path, ensure_writable_dir


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
    target.mkdir()
    (target / "old.txt").write_text("old")
    with atomic_dir(target) as tmp:
        (tmp / "new.txt").write_text("new")
    assert sorted(p.name for p in target.iterdir()) == ["new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    with pytest.raises(RuntimeError):
        with atomic_dir(target) as tmp:
            (tmp / "half.txt").write_text("x")
            raise RuntimeError("boom")
    assert sorted(p.name for p in target.iterdir()) == ["new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_unwritable_dir_is_a_user_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a dir")
    with pytest.raises(AvflowError, match="cannot create output directory"):
        ensure_writable_dir(blocker / "sub")
