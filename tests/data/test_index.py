"""Partial manifests: mergeable statistics and the checks of `prep index`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from avflow_cli.data.index import PartManifest, RunningStats, merge_parts
from avflow_cli.data.schema import ClipRecord, ShardIndex
from avflow_cli.errors import AvflowError
from avflow_cli.stats import ABS_STD_FLOOR, std_floor


def test_running_stats_merge_equals_direct() -> None:
    rng = np.random.default_rng(0)
    chunks = [rng.normal(loc=3, scale=2, size=(n, 4)) for n in (10, 1, 57, 0, 30)]
    parts = []
    for c in chunks:
        s = RunningStats()
        s.add(c)
        parts.append(s)
    merged = RunningStats()
    for s in parts:
        merged = merged.merge(s)
    both = np.concatenate(chunks)
    stats = merged.finalize()
    np.testing.assert_allclose(stats.mean, both.mean(0), rtol=1e-12)
    np.testing.assert_allclose(stats.std, both.std(0), rtol=1e-10)
    const = RunningStats()
    const.add(np.ones((5, 2)))
    assert const.finalize().std == [ABS_STD_FLOOR, ABS_STD_FLOOR]  # floored, never zero
    mixed = RunningStats()
    mixed.add(np.stack([np.linspace(0, 4, 9), np.full(9, 3.0)], 1))
    std = mixed.finalize().std
    assert std[1] == std_floor([std[0], 0.0]) > 0  # relative to the stream, the normaliser's rule
    with pytest.raises(AvflowError):
        RunningStats().finalize()


def _part(i: int, n: int, **kw) -> PartManifest:
    stats = RunningStats()
    stats.add(np.full((3, 2), float(i)))
    base = dict(shard_index=i, num_shards=n, clips=[ClipRecord(id=f"c{i}", shard=f"shard-{i:05d}.h5", frames=3, split="train")],
                dims={"mel": 2}, stats={"mel": stats}, extractors={"mel": "x"}, config={"seed": 0})
    return PartManifest(**(base | kw))


def test_merge_parts_writes_index(tmp_path: Path) -> None:
    for i in range(3):
        _part(i, 3).save(tmp_path)
    index = merge_parts(tmp_path)
    assert [c.id for c in index.clips] == ["c0", "c1", "c2"]
    assert index.stats["mel"].mean == [1.0, 1.0]
    assert ShardIndex.load(tmp_path).config["num_shards"] == 3


def test_merge_parts_refuses_incomplete_or_inconsistent_runs(tmp_path: Path) -> None:
    with pytest.raises(AvflowError, match="no partial manifests"):
        merge_parts(tmp_path)
    _part(0, 3).save(tmp_path)
    _part(2, 3).save(tmp_path)
    with pytest.raises(AvflowError, match=r"shards \[1\] of 3"):
        merge_parts(tmp_path)
    _part(1, 3, config={"seed": 1}).save(tmp_path)
    with pytest.raises(AvflowError, match="different settings"):
        merge_parts(tmp_path)
    _part(1, 3, dims={"mel": 5}).save(tmp_path)
    with pytest.raises(AvflowError, match="dim"):
        merge_parts(tmp_path)
    _part(1, 4).save(tmp_path)
    with pytest.raises(AvflowError, match="number of shards"):
        merge_parts(tmp_path)
    assert not (tmp_path / "index.json").exists()
