"""Landmark .pts files (iBUG / menpo): 1-based in the file, 0-based once read."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from avflow_cli.errors import InputFileError
from avflow_cli.vision.pts import parse_pts, read_pts


def test_read_pts_is_zero_based(tmp_path: Path) -> None:
    path = tmp_path / "face.pts"
    path.write_text("version: 1\nn_points:  3\n{\n1 1\n10.5 20\n3 4\n}\n")
    np.testing.assert_allclose(read_pts(path), [[0, 0], [9.5, 19], [2, 3]])


@pytest.mark.parametrize("text, problem", [("nothing", "not a .pts"), ("n_points: 2\n{\n1 2\n}", "n_points says 2"),
                                           ("n_points: 1\n{\n1 x\n}", "not two numbers")])
def test_malformed_pts(text: str, problem: str) -> None:
    with pytest.raises(InputFileError, match=problem):
        parse_pts(text, "x.pts")
