"""One place that turns a user's ``--device`` into a usable ``torch.device``."""

from __future__ import annotations

import torch

from avflow_cli.errors import AvflowError


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """"auto" (or None) → CUDA when available, else CPU; "cpu", "cuda", "cuda:N" checked.

    Asking for CUDA where there is none is a user error with a one-line message.
    """
    name = "auto" if device is None else str(device).lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError as err:
        raise AvflowError(f"unknown device {device!r} (use cpu, cuda, cuda:N or auto)") from err
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise AvflowError(f"device {device!r} requested but no CUDA device is available here (use --device cpu)")
    return dev
