"""Bring every stream onto the model's clock (``FPS``) by timestamps, never by frame counting.

Frame k of a stream sampled at ``rate`` Hz sits at time k / rate. Output frame j sits at
j / FPS and takes the linear interpolation of its two neighbouring input frames (the last
input frame is held at the very end). Quaternions are interpolated by normalised lerp after
making them hemisphere-continuous, so an interpolated rotation never passes through zero.

Rows a tracker lost (``good`` False) are filled before resampling, by the one pair of helpers
of :mod:`avflow_cli.gaps` (re-exported here): :func:`fill_linear` (interpolate between good rows, held at the ends: features and face
codes) and :func:`fill_nearest` (copy the nearest good row: rotations, which must stay valid).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from avflow_cli.constants import FPS
from avflow_cli.errors import AvflowError
from avflow_cli.gaps import fill_linear, fill_nearest, nearest_index  # noqa: F401  (re-exported for prep and importers)

LENGTH_TOLERANCE_S = 1.0  # streams of one session may differ by this much before it is an error


def num_frames(num_src: int, src_rate: float, dst_rate: float = FPS) -> int:
    """Output frames covering ``num_src`` frames at ``src_rate``: floor(duration × dst_rate)."""
    return int(np.floor(num_src / src_rate * dst_rate + 1e-9))


def _positions(num_src: int, src_rate: float, n_out: int, dst_rate: float) -> np.ndarray:
    """Fractional input index of each output frame's timestamp. (n_out,)"""
    return np.clip(np.arange(n_out) / dst_rate * src_rate, 0.0, num_src - 1)


def resample_to_fps(values: np.ndarray, src_rate: float, n_out: int | None = None, dst_rate: float = FPS) -> np.ndarray:
    """Linear interpolation on time. (N, D) or (N,) at ``src_rate`` → (T, D) or (T,) at ``dst_rate``."""
    x = np.asarray(values)
    if len(x) == 0:
        raise AvflowError("cannot resample an empty stream")
    if n_out is None:
        n_out = num_frames(len(x), src_rate, dst_rate)
    pos = _positions(len(x), src_rate, n_out, dst_rate)  # (T,)
    lo = np.floor(pos).astype(np.int64)  # (T,)
    hi = np.minimum(lo + 1, len(x) - 1)
    w = (pos - lo).astype(np.float64)
    if x.ndim > 1:
        w = w.reshape((-1,) + (1,) * (x.ndim - 1))
    out = x[lo].astype(np.float64) * (1 - w) + x[hi].astype(np.float64) * w  # (T, D)
    return out.astype(x.dtype if np.issubdtype(x.dtype, np.floating) else np.float32)


def resample_quaternions(quat: np.ndarray, src_rate: float, n_out: int | None = None, dst_rate: float = FPS) -> np.ndarray:
    """Normalised lerp of wxyz quaternions after hemisphere alignment. (N, 4) → (T, 4)."""
    from avflow_cli.vision.headpose import make_continuous

    q = make_continuous(np.asarray(quat, dtype=np.float64))  # (N, 4)
    out = resample_to_fps(q, src_rate, n_out, dst_rate)  # (T, 4)
    return (out / np.linalg.norm(out, axis=1, keepdims=True)).astype(np.float32)


def resample_headpose(pose: np.ndarray, src_rate: float, n_out: int | None = None, dst_rate: float = FPS) -> np.ndarray:
    """Head pose (N, 7) = quaternion + translation → (T, 7) at ``dst_rate``."""
    pose = np.asarray(pose)
    quat = resample_quaternions(pose[:, :4], src_rate, n_out, dst_rate)  # (T, 4)
    trans = resample_to_fps(pose[:, 4:].astype(np.float32), src_rate, len(quat), dst_rate)  # (T, 3)
    return np.concatenate([quat, trans], axis=1).astype(np.float32)


def resample_mask(mask: np.ndarray, src_rate: float, n_out: int | None = None, dst_rate: float = FPS) -> np.ndarray:
    """A boolean mask on the new clock: an output frame is True only if both neighbours are. (T,)"""
    m = np.asarray(mask, dtype=bool)
    if n_out is None:
        n_out = num_frames(len(m), src_rate, dst_rate)
    pos = _positions(len(m), src_rate, n_out, dst_rate)
    lo = np.floor(pos).astype(np.int64)
    hi = np.where(pos > lo, np.minimum(lo + 1, len(m) - 1), lo)
    return m[lo] & m[hi]


def common_length(
    streams: Mapping[str, tuple[int, float]],
    *,
    tolerance_s: float = LENGTH_TOLERANCE_S,
    source: str | Path = "",
    dst_rate: float = FPS,
) -> int:
    """Frames at ``dst_rate`` all streams cover: the shortest, after checking they roughly agree.

    ``streams`` maps a name (shown in errors, e.g. the file name) to (frames, rate). Streams
    whose durations differ by more than ``tolerance_s`` belong to different recordings, or one
    is truncated: that is an error naming both, not something to silently trim.
    """
    durations = {name: n / rate for name, (n, rate) in streams.items()}
    longest = max(durations, key=durations.get)
    shortest = min(durations, key=durations.get)
    gap = durations[longest] - durations[shortest]
    if gap > tolerance_s:
        raise AvflowError(
            f"{source}: streams differ in length by {gap:.2f} s (> {tolerance_s} s): "
            f"{shortest} {durations[shortest]:.2f} s vs {longest} {durations[longest]:.2f} s"
        )
    return min(num_frames(n, rate, dst_rate) for n, rate in streams.values())
