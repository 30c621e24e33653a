"""Kept for the old import path: the checks live in the library leaf :mod:`avflow_cli.checks`."""

from __future__ import annotations

from avflow_cli.checks import MAX_SEED, MAX_STEPS, check_finite, check_int_range, check_seed, check_steps

__all__ = ["MAX_SEED", "MAX_STEPS", "check_finite", "check_int_range", "check_seed", "check_steps"]
