"""Read landmark ``.pts`` files (iBUG 300-W / menpo format): ``n_points: N`` and one ``x y`` per line.

The format counts pixels from 1 (Matlab convention); :func:`read_pts` returns 0-based pixel
coordinates, the convention of dlib and OpenCV, so the two can be compared directly.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from avflow_cli.errors import InputFileError


def parse_pts(text: str, source: str | Path = "<text>") -> np.ndarray:
    """Landmarks (N, 2) as (x, y), 0-based, from the text of a ``.pts`` file."""
    count = re.search(r"n_points:\s*(\d+)", text)
    body = re.search(r"\{(.*?)\}", text, re.S)
    if count is None or body is None:
        raise InputFileError(source, "not a .pts landmark file (no n_points or no { … } block)")
    try:
        pts = np.array([[float(v) for v in line.split()] for line in body.group(1).strip().splitlines() if line.strip()])
    except ValueError:
        raise InputFileError(source, "a landmark line is not two numbers") from None
    n = int(count.group(1))
    if pts.shape != (n, 2):
        width = pts.shape[-1] if pts.ndim == 2 else "?"
        raise InputFileError(source, f"n_points says {n} but the block holds {pts.shape[0]} lines of {width} values")
    return pts - 1.0


def read_pts(path: str | Path) -> np.ndarray:
    """:func:`parse_pts` of the file at ``path``."""
    path = Path(path)
    try:
        return parse_pts(path.read_text(), path)
    except OSError as exc:
        raise InputFileError(path, f"cannot read ({exc.strerror or exc})") from None
