"""The one validated ``.npy`` reader of prep and the importers: one-line errors naming the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from avflow_cli.data.arrays import load_array
from avflow_cli.errors import InputFileError


def _save(tmp_path: Path, name: str, arr: np.ndarray) -> Path:
    path = tmp_path / name
    np.save(path, arr)
    return path


def test_reads_checked_arrays_and_unwraps_a_batch_of_one(tmp_path: Path) -> None:
    x = np.arange(12, dtype=np.float32).reshape(4, 3)
    np.testing.assert_array_equal(load_array(_save(tmp_path, "a.npy", x), ndim=2, dim=3), x)
    np.testing.assert_array_equal(load_array(_save(tmp_path, "b.npy", x[None]), ndim=2, dim=3), x)  # (1, N, D)
    assert load_array(_save(tmp_path, "c.npy", np.zeros(0, np.int64)), ndim=(0, 1), allow_empty=True).shape == (0,)
    nan = x.copy()
    nan[1, 1] = np.nan
    assert np.isnan(load_array(_save(tmp_path, "d.npy", nan), ndim=2, allow_nan=True)).sum() == 1


@pytest.mark.parametrize(
    ("arr", "kwargs", "message"),
    [
        (np.zeros((4, 3)), {"ndim": 2, "dim": 5}, "expected shape (N, 5), got (4, 3)"),
        (np.zeros((4, 3)), {"ndim": 3}, "expected shape (N, ?, ?), got (4, 3)"),
        (np.zeros((2, 2, 2)), {"ndim": (0, 1)}, "expected a 0 or 1-d array, got (2, 2, 2)"),
        (np.zeros((0, 3)), {"ndim": 2}, "expected shape (N, ?), got (0, 3)"),
        (np.array(["a", "b"]), {"ndim": 1}, "expected a numeric array"),
        (np.array([1.0, np.inf]), {"ndim": 1, "allow_nan": True}, "contains Inf values (1)"),
        (np.array([1.0, np.nan, np.nan]), {"ndim": 1}, "contains NaN values (2)"),
    ],
)
def test_bad_arrays_fail_with_one_line_naming_the_file(tmp_path: Path, arr: np.ndarray, kwargs: dict, message: str) -> None:
    path = _save(tmp_path, "bad.npy", arr)
    with pytest.raises(InputFileError) as err:
        load_array(path, **kwargs)
    assert message in str(err.value) and "bad.npy" in str(err.value) and "\n" not in str(err.value)


def test_missing_pickled_corrupt_and_npz_files(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="file not found"):
        load_array(tmp_path / "none.npy")
    obj = tmp_path / "obj.npy"
    np.save(obj, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    corrupt = tmp_path / "corrupt.npy"
    corrupt.write_bytes(b"\x93NUMPY garbage")
    for path in (obj, corrupt):
        with pytest.raises(InputFileError, match="not a readable .npy array"):
            load_array(path)
    npz = tmp_path / "z.npy"
    with open(npz, "wb") as f:
        np.savez(f, a=np.zeros(3))
    with pytest.raises(InputFileError, match="got an .npz archive"):
        load_array(npz)
