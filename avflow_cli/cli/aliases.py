"""Old option names kept working: hidden, deprecated aliases of renamed options.

When an option was renamed so that the CLI says what the Python API says (``--link`` →
``--link-audio`` for ``link_audio``), the old name stays as a hidden option; :func:`renamed`
takes its value when it was given and prints a one-line note naming the new spelling.
"""

from __future__ import annotations

from typing import TypeVar

from avflow_cli.console import err_console

T = TypeVar("T")


def renamed(old: str, old_value: T | None, new: str, new_value: T) -> T:
    """``old_value`` when the deprecated option ``old`` was given (a note says to use ``new``), else ``new_value``.

    The hidden option defaults to ``None`` (flags too: ``Optional[bool]``), so "not given" is ``None``.
    """
    if old_value is None:
        return new_value
    err_console.print(f"[yellow]note:[/] {old} is deprecated; use {new}", highlight=False)
    return old_value
