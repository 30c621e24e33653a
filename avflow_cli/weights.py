"""Weights files: the one safetensors writer and reader, and the one state-dict comparison.

Every weights folder (``config.json`` + ``model.safetensors``: model directories, the student
vocoder, avatar folders) writes and reads its tensors here: atomically, readable by others (a
model folder is meant to be shared; safetensors itself creates 0600 files), and with one-line
errors naming the file. A checkpoint of another architecture should fail with a line that names
what differs (a few missing, unexpected and wrongly shaped keys), not with PyTorch's multi-page
message.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from avflow_cli.errors import InputFileError
from avflow_cli.fsutil import atomic_path

EXAMPLES = 3  # keys quoted per kind of mismatch


def state_dict_mismatch(model: nn.Module, state: Mapping[str, torch.Tensor]) -> str | None:
    """None when ``state`` fits ``model`` exactly (keys and shapes), else a one-line summary."""
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = [f"{k}: file {tuple(state[k].shape)} vs model {expected[k]}"
             for k in sorted(set(expected) & set(state)) if tuple(state[k].shape) != expected[k]]
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing (e.g. {', '.join(missing[:EXAMPLES])})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected (e.g. {', '.join(unexpected[:EXAMPLES])})")
    if wrong:
        parts.append(f"{len(wrong)} with wrong shape (e.g. {'; '.join(wrong[:EXAMPLES])})")
    return "; ".join(parts) or None


def save_safetensors(path: str | Path, tensors: Mapping[str, torch.Tensor], metadata: Mapping[str, object] | None = None) -> Path:
    """Write ``tensors`` (moved to the CPU, contiguous) as a safetensors file, atomically."""
    from safetensors.torch import save_file

    state = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    path = Path(path)
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata={k: str(v) for k, v in (metadata or {}).items()} or None)
    return path


def load_safetensors(path: str | Path, what: str = "weights") -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file on the CPU; missing or unreadable → one line naming it."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, f"file not found ({what})")
    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError) as err:
        raise InputFileError(path, f"not a readable safetensors file ({err})") from err
