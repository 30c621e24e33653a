"""Rows a tracker lost: the nearest-good-row and linear gap-filling rules, in one leaf.

``data/`` (resampling, importers), ``vision/`` (head pose, SMIRK features) and the participant
front ends all fill untracked frames the same way, so the rules live below all of them
(docs/ARCHITECTURE.md §7). ``good`` is a (N,) bool mask of the rows that were measured.
"""

from __future__ import annotations

import numpy as np

from avflow_cli.errors import AvflowError


def nearest_index(good: np.ndarray) -> np.ndarray:
    """For each row, the index of the nearest good row (itself when good; ties take the earlier).

    (N,) bool with at least one True → (N,) int.
    """
    good = np.asarray(good, dtype=bool)
    idx = np.flatnonzero(good)
    if idx.size == 0:
        raise AvflowError("no good row to fill from")
    n = np.arange(len(good))
    pos = np.searchsorted(idx, n)  # (N,) first good row at or after n
    left = idx[np.clip(pos - 1, 0, len(idx) - 1)]
    right = idx[np.clip(pos, 0, len(idx) - 1)]
    return np.where(np.abs(n - left) <= np.abs(right - n), left, right)


def fill_nearest(values: np.ndarray, good: np.ndarray) -> np.ndarray:
    """Replace rows where ``good`` is False by the nearest good row. (N, ...) → (N, ...)

    Unchanged when every row or no row is good.
    """
    values, good = np.asarray(values), np.asarray(good, dtype=bool)
    if good.all() or not good.any():
        return values
    return values[nearest_index(good)]


def fill_linear(values: np.ndarray, good: np.ndarray) -> np.ndarray:
    """Replace rows where ``good`` is False by linear interpolation between good rows (held at the
    ends). (N, D) → (N, D) float32, a copy; unchanged values when every row or no row is good.

    Keeps conditioning streams free of zero spikes where a face was lost; ``good`` still says which
    frames were measured.
    """
    out = np.asarray(values, dtype=np.float32).copy()
    good = np.asarray(good, dtype=bool)
    if good.all() or not good.any():
        return out
    rows = np.arange(len(out))
    known = np.flatnonzero(good)
    for d in range(out.shape[1]):
        out[~good, d] = np.interp(rows[~good], known, out[known, d])
    return out
