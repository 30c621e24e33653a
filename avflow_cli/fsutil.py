"""Safe output: atomic writes, and the one rule for which folders avflow may replace.

Atomic writes: a reader never sees a half-written file, and a failed job leaves nothing behind.
Temporaries live beside their target and are named ``.{name}.{host}-{pid}.{random}.tmp{suffix}``,
so a later run recognises those of a killed process (``kill -9`` skips every cleanup) and
removes them (:func:`clean_stale_temporaries`, run once per folder and process).

Replacing folders (:func:`check_output_dir`, used by :func:`atomic_dir`): every folder
``atomic_dir`` writes carries a marker file, :data:`OUTPUT_MARKER`, holding its kind (``synth``,
``clip``, ``session`` …). A job silently replaces only a missing or empty folder, or one marked
with its own kind. Anything else — a regular file, a user's folder, another kind of avflow
folder, a symbolic link — is refused unless ``force``. Never replaced, even with ``force``: the
folders the job reads (``protect``: its model and components, or anything holding them, or any
unmarked part of them), and the current and home folders or any folder above them.

``force`` never wipes a folder: an existing folder that is not of the job's own kind (a user's
folder, another kind of output) keeps everything but the entries the job writes, which are
replaced one by one (:func:`atomic_dir`'s merge). Only a folder of the job's own kind is
replaced as a whole, and not even that when the job names the files it owns (``owned``): then
those names are replaced and the rest of the folder (a user's ``face.mp4``) is kept.
Output files follow the same rule (:func:`check_output_file`).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from avflow_cli.errors import AvflowError

OUTPUT_MARKER = ".avflow-output"
_TEMP_RE = re.compile(r"^\..+\.(?P<host>[A-Za-z0-9-]+)-(?P<pid>\d+)\.[A-Za-z0-9_]+\.tmp")
_cleaned: set[Path] = set()


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


# ---------------------------------------------------------------------------------------------
# Temporaries and their cleanup
# ---------------------------------------------------------------------------------------------
def _host_tag() -> str:
    """This machine's short name, reduced to letters, digits and dashes (part of temporary names)."""
    host = socket.gethostname().split(".")[0]
    return re.sub(r"[^A-Za-z0-9-]", "-", host)[:24] or "host"


def _temp_prefix(name: str) -> str:
    return f".{name}.{_host_tag()}-{os.getpid()}."


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def clean_stale_temporaries(folder: str | Path) -> list[Path]:
    """Remove temporaries of avflow's naming in ``folder`` whose process (on this host) is gone.

    Temporaries of live processes and of other hosts (a shared file system) are left alone.
    Returns what was removed.
    """
    folder = Path(folder)
    host, removed = _host_tag(), []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        m = _TEMP_RE.match(entry.name)
        if m is None or m["host"] != host:
            continue
        pid = int(m["pid"])
        if pid == os.getpid() or _process_alive(pid):
            continue
        _remove(Path(entry.path))
        removed.append(Path(entry.path))
    return removed


def _clean_once(folder: Path) -> None:
    """Clean ``folder`` of stale temporaries the first time this process writes into it."""
    key = folder.resolve()
    if key not in _cleaned:
        clean_stale_temporaries(folder)
        _cleaned.add(key)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds.

    The temporary name keeps the suffix so libraries that infer the format from it still work.
    """
    path = Path(path)
    ensure_writable_dir(path.parent)
    _clean_once(path.parent)
    fd, tmp_name = tempfile.mkstemp(prefix=_temp_prefix(path.stem), suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        _share_like_a_new_file(tmp, is_dir=False)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


# ---------------------------------------------------------------------------------------------
# Which folders may be replaced
# ---------------------------------------------------------------------------------------------
def output_kind(path: str | Path) -> str | None:
    """The kind recorded in ``path``'s marker, or None when avflow did not write this folder."""
    marker = Path(path) / OUTPUT_MARKER
    try:
        kind = marker.read_text().strip() if marker.is_file() else ""
    except (OSError, UnicodeDecodeError):
        return None
    return kind or None


def _places_in_use() -> list[Path]:
    """The current and home folders: replacing them (or a folder above them) is never meant."""
    places = [Path.cwd().resolve()]
    with contextlib.suppress(RuntimeError, KeyError):  # no HOME and no passwd entry
        places.append(Path.home().resolve())
    return places


def _contains(outer: Path, inner: Path) -> bool:
    return inner == outer or inner.is_relative_to(outer)


def check_output_dir(
    path: str | Path, *, kind: str = "output", force: bool = False, protect: Iterable[str | Path | None] = ()
) -> Path:
    """Raise a one-line :class:`AvflowError` unless an output folder of ``kind`` may go at ``path``.

    See the module docstring for the rule. Nothing is created; returns ``path``.
    """
    path = Path(path)
    target = path.resolve()
    exists = path.exists() or path.is_symlink()
    for item in protect:
        if item is None:
            continue
        guarded = Path(item).resolve()
        if _contains(target, guarded):
            what = "is" if target == guarded else "holds"
            raise AvflowError(f"{path}: {what} {item}, which this command reads; choose another output folder")
        if exists and _contains(guarded, target) and output_kind(path) != kind:
            raise AvflowError(f"{path}: is part of {item}, which this command reads; choose another output folder")
    if any(_contains(target, place) for place in _places_in_use()):
        raise AvflowError(f"{path}: is the current, home or root folder (or holds it); choose a new output folder")
    if not exists or force:
        return path
    advice = "choose a new name or pass --force to replace it"
    if path.is_symlink():
        raise AvflowError(f"{path}: exists and is a symbolic link, not a folder avflow wrote; {advice}")
    if not path.is_dir():
        raise AvflowError(f"{path}: exists and is a file, not an avflow output folder; {advice}")
    found = output_kind(path)
    if found == kind:
        return path
    if found is not None:
        raise AvflowError(f"{path}: holds an avflow {found} folder, not a {kind} output; {advice}")
    try:
        empty = not any(path.iterdir())
    except OSError as err:
        raise AvflowError(f"{path}: cannot read the existing folder ({err.strerror})") from err
    if not empty:
        raise AvflowError(f"{path}: exists and holds files avflow did not write; {advice}")
    return path


@contextlib.contextmanager
def atomic_dir(
    path: str | Path, *, kind: str = "output", force: bool = False, protect: Iterable[str | Path | None] = (),
    owned: Iterable[str] | None = None,
) -> Iterator[Path]:
    """Yield a temporary folder whose entries land at ``path`` when the block succeeds.

    The folder gets the :data:`OUTPUT_MARKER` of ``kind``; :func:`check_output_dir` decides
    (before anything is written, and again before the commit) whether ``path`` may be written.
    A missing path, or a folder of ``kind`` when ``owned`` is None, is replaced as a whole; any
    other existing folder only has the entries written here (and stale ``owned`` names)
    replaced: see the module docstring.
    """
    path = Path(path)
    protect = [p for p in protect if p is not None]
    owned = None if owned is None else list(owned)
    check_output_dir(path, kind=kind, force=force, protect=protect)
    ensure_writable_dir(path.parent)
    _clean_once(path.parent)
    tmp = Path(tempfile.mkdtemp(prefix=_temp_prefix(path.name), suffix=".tmp", dir=path.parent))
    try:
        (tmp / OUTPUT_MARKER).write_text(kind + "\n")
        yield tmp
        _share_like_a_new_file(tmp, is_dir=True)
        if not (path.exists() or path.is_symlink()):
            os.replace(tmp, path)
            return
        check_output_dir(path, kind=kind, force=force, protect=protect)  # it may have changed meanwhile
        if path.is_dir() and not path.is_symlink() and (owned is not None or output_kind(path) != kind):
            _merge_into(tmp, path, owned or ())
        else:  # our own folder, as a whole; or (forced) a file or link, never what a link points to
            _swap(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _swap(new: Path, path: Path) -> None:
    """Put ``new`` at ``path``, removing what was there (a file, a link, a folder of our own)."""
    old = path.with_name(f"{_temp_prefix(path.name)}old.tmp")
    _remove(old)
    os.replace(path, old)
    os.replace(new, path)
    _remove(old)


def _merge_into(staged: Path, path: Path, owned: Iterable[str]) -> None:
    """Move each entry of ``staged`` into the existing folder ``path``, replacing only same-named
    entries (each rename atomic); remove the ``owned`` names this run did not write (an old
    preview), and nothing else. The names ``owned`` lists come last, in its order (meta.json last
    marks the set complete), then the marker."""
    owned = list(owned)
    rank = {name: i for i, name in enumerate(owned)}
    entries = sorted((e for e in staged.iterdir() if e.name != OUTPUT_MARKER),
                     key=lambda e: (e.name in rank, rank.get(e.name, 0), e.name))
    for entry in entries:
        target = path / entry.name
        if target.is_dir() and not target.is_symlink() or entry.is_dir():
            if target.exists() or target.is_symlink():
                _swap(entry, target)
            else:
                os.replace(entry, target)
        else:
            os.replace(entry, target)
    written = {e.name for e in entries}
    for name in owned:
        if name not in written:
            _remove(path / name)
    os.replace(staged / OUTPUT_MARKER, path / OUTPUT_MARKER)
    shutil.rmtree(staged, ignore_errors=True)


def check_output_file(path: str | Path, *, force: bool = False, protect: Iterable[str | Path | None] = ()) -> Path:
    """Raise a one-line :class:`AvflowError` unless a new file may be written at ``path``.

    Refused even with ``force``: a path that is (or, through a link, points to) one of the files
    or folders the job reads (``protect``), or lies inside a folder it reads; an existing folder.
    Without ``force``: any existing entry. Nothing is created; returns ``path``.
    """
    path = Path(path)
    target = path.resolve()
    for item in protect:
        if item is None:
            continue
        guarded = Path(item).resolve()
        if target == guarded or (Path(item).is_dir() and _contains(guarded, target)):
            what = "is" if target == guarded else "is inside"
            raise AvflowError(f"{path}: {what} {item}, which this command reads; choose another output name")
    if path.is_dir() and not path.is_symlink():
        raise AvflowError(f"{path}: is a folder; name the file to write (e.g. {path / 'video.mp4'})")
    if (path.exists() or path.is_symlink()) and not force:
        raise AvflowError(f"{path}: exists; choose a new name or pass --force to replace it")
    return path
