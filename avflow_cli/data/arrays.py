"""Reading one ``.npy`` array a user handed over: the one ``np.load`` of prep and the importers.

Every stream of a session or a release is a ``.npy`` file someone else wrote. :func:`load_array`
checks what it reads (exists, is an array and not a pickle, has the expected rank and width, is
numeric, holds no Inf and — unless the caller interpolates over them — no NaN) and fails with one
line naming the file, so a bad file stops a stage before anything is written.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from avflow_cli.errors import InputFileError

__all__ = ["load_array"]


def _want(ndim: int | tuple[int, ...], dim: int | None) -> str:
    """The expected shape in words: ``(N, ?, 3)`` for one rank, ``a 0- or 1-d array`` for several."""
    if isinstance(ndim, tuple):
        return f"a {' or '.join(map(str, ndim))}-d array"
    if ndim == 0:
        return "a scalar"
    return "shape (N" + ", ?" * (ndim - 1 - (dim is not None)) + (f", {dim}" if dim is not None else "") + ")"


def load_array(
    path: str | Path,
    *,
    ndim: int | tuple[int, ...] | None = None,
    dim: int | None = None,
    allow_nan: bool = False,
    allow_inf: bool = False,
    allow_empty: bool = False,
) -> np.ndarray:
    """``np.load`` (no pickles) with one-line :class:`InputFileError` for missing, corrupt, mis-shaped
    or non-finite arrays.

    ``ndim``: the rank, or the ranks, accepted (a ``(1, N, …)`` batch-of-one file is read as its one
    item when a single rank is asked, as the release writes tokens); ``dim``: the last axis' size;
    ``allow_nan``/``allow_inf``: keep those values for the caller (e.g. lost-tracking frames it
    interpolates over); ``allow_empty``: accept zero rows (e.g. a list of missing frames).
    """
    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, "file not found")
    try:
        arr = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise InputFileError(path, f"not a readable .npy array ({err})") from err
    if not isinstance(arr, np.ndarray):  # an .npz archive opened by np.load
        arr.close()
        raise InputFileError(path, "expected a .npy array, got an .npz archive")
    ranks = (ndim,) if isinstance(ndim, int) else ndim
    if isinstance(ndim, int) and arr.ndim == ndim + 1 and arr.shape[0] == 1:
        arr = arr[0]  # (1, N, D) batch-of-one files
    bad_rank = ranks is not None and arr.ndim not in ranks
    bad_dim = dim is not None and (arr.ndim == 0 or arr.shape[-1] != dim)
    empty = arr.ndim > 0 and len(arr) == 0 and not allow_empty
    if bad_rank or bad_dim or empty:
        want = _want(ndim if ndim is not None else arr.ndim, dim)
        raise InputFileError(path, f"expected {want}, got {arr.shape}")
    if not np.issubdtype(arr.dtype, np.number) and arr.dtype != bool:
        raise InputFileError(path, f"expected a numeric array, got dtype {arr.dtype}")
    if arr.dtype != bool and not np.issubdtype(arr.dtype, np.integer):
        if not allow_inf and np.isinf(arr).any():
            raise InputFileError(path, f"contains Inf values ({int(np.isinf(arr).sum())})")
        if not allow_nan and np.isnan(arr).any():
            raise InputFileError(path, f"contains NaN values ({int(np.isnan(arr).sum())})")
    return arr
