"""User-facing errors.

Raise :class:`AvflowError` for anything a user can fix (bad input, missing file, wrong
configuration). The CLI prints its message as one line and exits with status 2, without a
traceback. Programming errors stay ordinary exceptions so they keep their tracebacks.
"""

from __future__ import annotations

from pathlib import Path


class AvflowError(Exception):
    """An error caused by the user's input or environment, reported as one line."""

    exit_code = 2


class InputFileError(AvflowError):
    """A specific input file is missing, unreadable or malformed."""

    def __init__(self, path: str | Path, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = Path(path)
        self.problem = problem


class MissingCheckpointError(AvflowError):
    """A pretrained component's weights were not found where avflow looks for them."""
