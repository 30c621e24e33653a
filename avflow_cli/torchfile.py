"""Reading PyTorch files without running code: the one ``torch.load`` of avflow.

A ``.pt``/``.pth`` file is a pickle, and a pickle can name any Python callable to run while it
loads. Every file avflow reads goes through :func:`load_torch_file`, which uses
``weights_only=True`` (tensors, numbers, strings and plain containers only) plus, where a caller
needs it, a short allow-list of harmless types. A file that names anything else is refused with
one line of our own — never torch's advice to retry with ``weights_only=False``.
"""

from __future__ import annotations

import pickle
import re
import warnings
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from avflow_cli.errors import InputFileError

_GLOBAL_RE = re.compile(r"Unsupported global: GLOBAL ([\w.]+)")
_UNPICKLER_RE = re.compile(r"WeightsUnpickler error:\s*([^\n]+)")


def numpy_array_globals() -> list[Any]:
    """The types a pickled numpy array names (``np.random.get_state()`` in old training states)."""
    import numpy as np

    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _reconstruct  # type: ignore[no-redef]
    return [_reconstruct, np.ndarray, np.dtype, type(np.dtype(np.uint32))]


def _reason(err: BaseException, noun: str) -> str:
    """A one-line account of why torch refused or could not read the file."""
    text = str(err)
    m = _GLOBAL_RE.search(text)
    if m:
        return (f"refused: it is not plain weights (loading it would call {m.group(1)}, and a file that "
                "calls code can run anything); avflow reads only tensors and plain containers")
    m = _UNPICKLER_RE.search(text)  # torch's own lines around it advise an unsafe load: never shown
    if m is not None or "weights only load failed" in text.lower():
        detail = m.group(1).strip() if m else "not plain weights"
        return f"not a readable {noun} (truncated or corrupt, or not plain weights?): {detail[:160]}"
    first = next((line.strip() for line in text.splitlines() if line.strip()), type(err).__name__)
    return f"not a readable {noun} (truncated or corrupt?): {first[:160]}"


def load_torch_file(
    path: str | Path, what: str = "PyTorch checkpoint", *, allow: Sequence[Any] = (), noun: str = "PyTorch checkpoint"
) -> Any:
    """``torch.load(path)`` on CPU with ``weights_only=True``; one-line :class:`InputFileError` otherwise.

    ``what`` names the file in the not-found message, ``noun`` in the unreadable one; ``allow``
    adds types the caller knows are data (never callables that act on the outside world).
    """
    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, f"{what} not found")
    try:
        with torch.serialization.safe_globals(list(allow)), warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # torch's notes on odd pickles: the error says enough
            return torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError, TypeError, AttributeError,
            KeyError, IndexError, zipfile.BadZipFile, UnicodeDecodeError) as err:
        raise InputFileError(path, _reason(err, noun)) from err
