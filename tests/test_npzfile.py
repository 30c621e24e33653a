"""Reading users' .npz/.npy: headers before data, no pickles, damaged archives as one line —
and the readers elsewhere (eval's GEN layout) share it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from avflow_cli.errors import InputFileError
from avflow_cli.npzfile import npz_shapes, read_npy, read_npz


def test_shapes_come_from_headers_and_data_round_trips(tmp_path: Path) -> None:
    np.savez_compressed(tmp_path / "a.npz", face=np.arange(12, dtype=np.float32).reshape(4, 3), fps=np.float64(30))
    shapes = npz_shapes(tmp_path / "a.npz")
    assert shapes["face"] == ((4, 3), np.dtype(np.float32)) and shapes["fps"] == ((), np.dtype(np.float64))
    arrays = read_npz(tmp_path / "a.npz", keys=["face"])
    assert list(arrays) == ["face"] and arrays["face"][3, 2] == 11


def test_limits_objects_and_damage_are_refused(tmp_path: Path) -> None:
    np.savez_compressed(tmp_path / "big.npz", face=np.zeros((1000, 1000), np.float32))
    with pytest.raises(InputFileError, match=r"claims shape \(1000, 1000\) \(1,000,000 values\)"):
        read_npz(tmp_path / "big.npz", max_elements=10_000)
    np.save(tmp_path / "o.npy", np.array([None, 1], dtype=object), allow_pickle=True)
    with pytest.raises(InputFileError, match="holds Python objects"):
        read_npy(tmp_path / "o.npy")
    (tmp_path / "cut.npy").write_bytes((tmp_path / "big.npz").read_bytes()[:10])
    with pytest.raises(InputFileError, match="not a readable .npy file"):
        read_npy(tmp_path / "cut.npy")
    whole = (tmp_path / "big.npz").read_bytes()
    (tmp_path / "crc.npz").write_bytes(whole[:100] + bytes(len(whole) - 200) + whole[-100:])  # data zeroed
    with pytest.raises(InputFileError, match="not a readable .npz file"):
        read_npz(tmp_path / "crc.npz")


def test_eval_reads_a_damaged_generated_clip_in_one_line(tmp_path: Path) -> None:
    from avflow_cli.metrics.generated import MOTION_NAME, load_prediction

    clip = tmp_path / "clip"
    clip.mkdir()
    np.savez(clip / MOTION_NAME, face=np.zeros((10, 4), np.float32))
    (clip / MOTION_NAME).write_bytes((clip / MOTION_NAME).read_bytes()[:-40])
    with pytest.raises(InputFileError, match="not a readable .npz"):
        load_prediction(clip)
