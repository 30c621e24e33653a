"""Shard writer/reader round-trip and schema validation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from avflow_cli import constants as K
from avflow_cli.data.schema import ShardIndex
from avflow_cli.data.shards import read_clip, write_shard
from avflow_cli.errors import AvflowError


def test_synthetic_shards_round_trip(synthetic_shards: Path) -> None:
    index = ShardIndex.load(synthetic_shards)
    assert index.fps == K.FPS
    assert {c.split for c in index.clips} == {"train", "val", "test"}
    clip = read_clip(synthetic_shards, index.clips[0])
    assert clip["mel"].shape == (index.clips[0].frames, K.N_MELS)
    assert clip["tokens"].shape[1] == K.TOKEN_DIM
    assert clip["valid"].dtype == bool
    window = read_clip(synthetic_shards, index.clips[0], ["mel"], 10, 20)
    np.testing.assert_array_equal(window["mel"], clip["mel"][10:20])
    assert set(index.stats) >= {"mel", "face", "tokens", "head_pose"}


def test_write_shard_rejects_bad_clip_and_leaves_nothing(tmp_path: Path) -> None:
    bad = {"mel": np.zeros((5, K.N_MELS), np.float32), "tokens": np.zeros((4, K.TOKEN_DIM), np.float32)}
    with pytest.raises(AvflowError):
        write_shard(tmp_path / "shard-00000.h5", {"c": bad})
    assert list(tmp_path.iterdir()) == []
