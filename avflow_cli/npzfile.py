"""Reading ``.npz``/``.npy`` files a user pointed at: shapes before data, one-line errors.

A damaged archive (``BadZipFile``, a bad CRC, a truncated member), an object array (which
would need unpickling: refused, never loaded) or an array far larger than its file (a
compressed 175 KB npz can claim 5 M frames) is an :class:`InputFileError`, found before any
large allocation: :func:`npz_shapes` reads only the members' headers.

numpy tries a file that is neither a zip (``.npz``) nor an ``.npy`` as a pickle, and with
``allow_pickle=False`` says "This file contains pickled (object) data" — about a text file, an
HTML page or an empty file named ``.npz`` too. :func:`npz_problem` names what the file is instead.
"""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

import numpy as np

from avflow_cli.errors import InputFileError

READ_ERRORS = (OSError, ValueError, EOFError, KeyError, TypeError, zipfile.BadZipFile, zlib.error)  # TypeError: an .npy has no `with`
ZIP_MAGIC = b"PK\x03\x04"
EMPTY_ZIP_MAGIC = b"PK\x05\x06"
NPY_MAGIC = b"\x93NUMPY"


def npz_problem(path: str | Path, err: BaseException) -> str:
    """A one-line reason for ``err`` raised by ``np.load(path)`` of what should be an .npz archive."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(512)
    except OSError as read_err:
        return f"cannot read ({read_err.strerror})"
    if head.startswith((ZIP_MAGIC, EMPTY_ZIP_MAGIC)):
        return f"a damaged or foreign .npz archive ({err})"
    if head.startswith(NPY_MAGIC):
        return "a single .npy array, not an .npz archive"
    if not head:
        return "an empty file, not a valid .npz archive"
    printable = sum(32 <= b < 127 or b in (9, 10, 13) for b in head)
    kind = "a text file" if printable >= 0.95 * len(head) else "data of an unknown format"
    return f"not a valid .npz archive (a zip of .npy arrays): it is {kind}"


def _header(fp: object) -> tuple[tuple[int, ...], np.dtype]:
    version = np.lib.format.read_magic(fp)
    reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, _fortran, dtype = reader(fp)
    return tuple(int(n) for n in shape), np.dtype(dtype)


def npz_shapes(path: str | Path) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """``{name: (shape, dtype)}`` of every array in an ``.npz``, from the headers alone."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            out = {}
            for info in archive.infolist():
                if not info.filename.endswith(".npy"):
                    continue
                with archive.open(info) as fp:
                    out[info.filename[: -len(".npy")]] = _header(fp)
            return out
    except READ_ERRORS as err:
        raise InputFileError(path, f"not a readable .npz file: {npz_problem(path, err)}") from err


def npy_shape(path: str | Path) -> tuple[tuple[int, ...], np.dtype]:
    """(shape, dtype) of an ``.npy`` file from its header."""
    path = Path(path)
    try:
        with open(path, "rb") as fp:
            return _header(fp)
    except READ_ERRORS as err:
        raise InputFileError(path, f"not a readable .npy file ({type(err).__name__}: {err})") from err


def check_plain(path: Path, name: str, dtype: np.dtype) -> None:
    if dtype.hasobject:
        raise InputFileError(path, f"array {name!r} holds Python objects (it would need unpickling, which avflow "
                                   "never does); save plain number arrays")


def read_npz(path: str | Path, *, max_elements: int | None = None,
             keys: list[str] | None = None) -> dict[str, np.ndarray]:
    """The arrays of an ``.npz`` (only ``keys`` when given), checked from their headers first:
    no object arrays, none with more than ``max_elements`` values."""
    path = Path(path)
    shapes = npz_shapes(path)
    wanted = [k for k in shapes if keys is None or k in keys]
    for name in wanted:
        shape, dtype = shapes[name]
        check_plain(path, name, dtype)
        size = int(np.prod(shape, dtype=np.float64)) if shape else 1
        if max_elements is not None and size > max_elements:
            raise InputFileError(path, f"array {name!r} claims shape {shape} ({size:,} values); at most "
                                       f"{max_elements:,} are read from one file")
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in wanted}
    except READ_ERRORS as err:
        raise InputFileError(path, f"not a readable .npz file: {npz_problem(path, err)}") from err


def read_npy(path: str | Path, *, max_elements: int | None = None) -> np.ndarray:
    """An ``.npy`` array, header-checked as :func:`read_npz` does."""
    path = Path(path)
    shape, dtype = npy_shape(path)
    check_plain(path, "", dtype)
    size = int(np.prod(shape, dtype=np.float64)) if shape else 1
    if max_elements is not None and size > max_elements:
        raise InputFileError(path, f"claims shape {shape} ({size:,} values); at most {max_elements:,} are read")
    try:
        return np.load(path, allow_pickle=False)
    except READ_ERRORS as err:
        raise InputFileError(path, f"not a readable .npy file ({type(err).__name__}: {err})") from err
