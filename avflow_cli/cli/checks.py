"""Range checks of numeric options shared by the commands: one-line errors instead of tracebacks.

Typer rejects what is not a number; these reject numbers no run can use (a seed torch cannot
take, zero or 10^20 Euler steps, a NaN threshold) before any model is loaded.
"""

from __future__ import annotations

import math

from avflow_cli.errors import AvflowError

MAX_SEED = 2**31 - 1  # the range every RNG avflow seeds accepts (torch, numpy, the server's limit)
MAX_STEPS = 100_000  # Euler steps: flow matching needs 8-32; far beyond this is a typo, not a setting


def check_seed(seed: int, option: str = "--seed") -> int:
    if not 0 <= seed <= MAX_SEED:
        raise AvflowError(f"{option} must be between 0 and {MAX_SEED}, got {seed}")
    return seed


def check_steps(steps: int | None, option: str = "--steps") -> int | None:
    """``None`` (the model's own count) or 1 … MAX_STEPS."""
    if steps is not None and steps < 1:
        raise AvflowError(f"{option} must be at least 1, got {steps}")
    if steps is not None and steps > MAX_STEPS:
        raise AvflowError(f"{option} must be at most {MAX_STEPS} (flow matching needs 8-32), got {steps}")
    return steps


def check_finite(value: float | None, option: str, *, positive: bool = False) -> float | None:
    """``None`` or a finite number (strictly positive when ``positive``)."""
    if value is None:
        return None
    if not math.isfinite(value) or (positive and value <= 0):
        raise AvflowError(f"{option} must be a finite {'positive ' if positive else ''}number, got {value}")
    return value


def check_int_range(value: int, option: str, low: int, high: int) -> int:
    if not low <= value <= high:
        raise AvflowError(f"{option} must be between {low} and {high}, got {value}")
    return value
