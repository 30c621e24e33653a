"""Atomic writes: a reader never sees a half-written file, and a failed job leaves nothing behind."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from avflow_cli.errors import AvflowError


def _umask() -> int:
    """The process umask (read by setting and restoring it: there is no getter)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _share_like_a_new_file(path: Path, is_dir: bool) -> None:
    """mkstemp/mkdtemp create private (0600/0700) entries; give them the usual umask mode."""
    path.chmod((0o777 if is_dir else 0o666) & ~_umask())


def ensure_writable_dir(path: str | Path) -> Path:
    """Create ``path`` (and parents) and check it is writable, with a one-line error if not."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise AvflowError(f"{path}: cannot create output directory ({err.strerror})") from err
    if not os.access(path, os.W_OK | os.X_OK):
        raise AvflowError(f"{path}: output directory is not writable")
    return path


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds.

    The temporary name keeps the suffix so libraries that infer the format from it still work.
    """
    path = Path(path)
    ensure_writable_dir(path.parent)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        _share_like_a_new_file(tmp, is_dir=False)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_dir(path: str | Path, *, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary directory that replaces ``path`` as a whole when the block succeeds."""
    path = Path(path)
    ensure_writable_dir(path.parent)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        _share_like_a_new_file(tmp, is_dir=True)
        if path.exists():
            if not overwrite:
                raise AvflowError(f"{path}: already exists")
            old = path.with_name(f".{path.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
