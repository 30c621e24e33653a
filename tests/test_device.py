"""--device parsing: auto, explicit CPU, and a clear error for CUDA where there is none."""

from __future__ import annotations

import pytest
import torch

from avflow_cli.device import resolve_device
from avflow_cli.errors import AvflowError


def test_auto_and_cpu() -> None:
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device(None).type == expected
    assert resolve_device("cpu") == torch.device("cpu")


def test_bad_device_names_are_user_errors() -> None:
    with pytest.raises(AvflowError, match="unknown device"):
        resolve_device("tpu9")
    if not torch.cuda.is_available():
        with pytest.raises(AvflowError, match="no CUDA device"):
            resolve_device("cuda:0")
