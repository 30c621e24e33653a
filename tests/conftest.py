"""Shared fixtures. Tests run on CPU with few threads so the 2-core CI machine stays responsive."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "2")

import torch  # noqa: E402

torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


@pytest.fixture(scope="session")
def synthetic_shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small shard directory with learnable synthetic streams (no participant guidance)."""
    from avflow_cli.data.synthetic import make_synthetic_shards

    out = tmp_path_factory.mktemp("synthetic_shards")
    make_synthetic_shards(out)
    return out


@pytest.fixture(scope="session")
def synthetic_dyadic_shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Like ``synthetic_shards`` but with participant tokens and SMIRK features."""
    from avflow_cli.data.synthetic import make_synthetic_shards

    out = tmp_path_factory.mktemp("synthetic_dyadic_shards")
    make_synthetic_shards(out, participant=True)
    return out
