"""The constant-channel rule of per-channel statistics, shared by ``data/`` and ``models/``.

A channel whose training std is below ``REL_STD_FLOOR`` × the median std of its stream (e.g. a
token that never fires) carries no information. The shard index (``data/index.py``) floors the
std it stores with :func:`floor_std`, and the normaliser (``models/normalize.py``) reads the same
rule to recognise such channels (:func:`constant_channels`) and normalise them to 0, so the two
can never disagree. A leaf module (numpy only), so both packages import it without importing
each other (docs/INTERFACES.md, "Package layering").
"""

from __future__ import annotations

from typing import Any

import numpy as np

REL_STD_FLOOR = 1e-3  # a std below this fraction of its stream's median std: a constant channel
ABS_STD_FLOOR = 1e-8  # a stream of only constant channels still gets a positive std
_CONSTANT_TOLERANCE = 1.001  # float32 round trips of a floored std still read as constant


def std_floor(std: Any) -> float:
    """The smallest std a channel of this stream may have: relative to the stream's median."""
    std = np.asarray(std, np.float64)
    return max(REL_STD_FLOOR * float(np.median(std)) if std.size else 0.0, ABS_STD_FLOOR)


def floor_std(std: Any) -> np.ndarray:
    """Per-channel std (D,) raised to the stream's floor (what ``index.json`` stores)."""
    std = np.asarray(std, np.float64)
    return np.maximum(std, std_floor(std))


def constant_channels(std: Any) -> np.ndarray:
    """(D,) bool: channels at (or below) the floor, i.e. constant in training."""
    std = np.asarray(std, np.float64)
    return std <= std_floor(std) * _CONSTANT_TOLERANCE
