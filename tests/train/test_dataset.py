"""Random windows: deterministic by step, sharded by rank, padded short clips, dims checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import pytest

from avflow_cli.data.dataset import (
    AVFlowTransform,
    FixedWindows,
    RandomWindows,
    WindowReader,
    check_avflow_dims,
)
from avflow_cli.data.schema import ShardIndex
from avflow_cli.errors import AvflowError
from avflow_cli.models.config import AVFlowConfig
from avflow_cli.models.normalize import Normalizer, model_streams


def _setup(shards: Path, frames: int, **cfg_kw):
    index = ShardIndex.load(shards)
    cfg = AVFlowConfig(face_dim=index.dims["face"], **cfg_kw)
    norm = Normalizer.from_index(index, model_streams(cfg))
    tf = AVFlowTransform(cfg, norm)
    return index, cfg, tf, WindowReader(shards, index.split("train"), tf.streams(), frames)


def test_windows_are_a_function_of_step_and_rank(synthetic_shards: Path) -> None:
    index, cfg, tf, reader = _setup(synthetic_shards, 64)
    a = RandomWindows(reader, 4, seed=1, transform=tf)
    b = RandomWindows(reader, 4, seed=1, transform=tf)
    assert a.windows(7) == b.windows(7) and a.windows(7) != a.windows(8)
    batch = a[7]
    assert batch["x"].shape == (4, 64, cfg.x_dim) and batch["cond"].shape == (4, 64, 29) and batch["valid"].shape == (4, 64)
    r0 = RandomWindows(reader, 2, seed=1, transform=tf, rank=0, world=2).windows(3)
    r1 = RandomWindows(reader, 2, seed=1, transform=tf, rank=1, world=2).windows(3)
    assert r0 + r1 == RandomWindows(reader, 4, seed=1, transform=tf).windows(3)  # ranks split one global draw


def test_short_clips_are_padded_and_masked(synthetic_shards: Path) -> None:
    index, cfg, tf, reader = _setup(synthetic_shards, 500)  # clips have 400 frames
    ex = reader.read(0, 0)
    assert ex["mel"].shape == (500, 80)
    assert ex["valid"][:400].all() and not ex["valid"][400:].any()
    assert np.all(ex["mel"][400:] == 0)
    assert len(FixedWindows(reader, 3, tf)) == 3


def test_dims_are_checked(synthetic_shards: Path) -> None:
    index = ShardIndex.load(synthetic_shards)
    with pytest.raises(AvflowError, match="face has 16 dims but the config expects 256"):
        check_avflow_dims(index, AVFlowConfig(face_dim=256), synthetic_shards)
    with pytest.raises(AvflowError, match="no 'p_tokens' stream"):
        check_avflow_dims(index, AVFlowConfig(face_dim=16, participant_tokens=True), synthetic_shards)


def test_dyadic_streams_join_cond(synthetic_dyadic_shards: Path) -> None:
    index, cfg, tf, reader = _setup(synthetic_dyadic_shards, 32, participant_tokens=True, participant_visual_dim=56)
    check_avflow_dims(index, cfg, synthetic_dyadic_shards)
    assert tf(reader.read(0, 5))["cond"].shape == (32, 29 + 29 + 56)


def test_worker_processes_give_the_same_batches(synthetic_shards: Path) -> None:
    from avflow_cli.data.dataset import batches

    index, cfg, tf, reader = _setup(synthetic_shards, 48)
    reader.read(0, 0)  # the parent holds an open handle: workers must open their own
    ds = RandomWindows(reader, 2, seed=3, transform=tf)
    direct = [ds[s]["x"] for s in range(5, 8)]
    with_workers = [b["x"] for b in batches(ds, 5, 8, num_workers=2)]
    for a, b in zip(direct, with_workers, strict=True):
        assert torch.equal(a, b)
