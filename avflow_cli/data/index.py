"""Partial manifests and their merge into ``index.json``.

Each shard writer (one process, or one task of a cluster array job) writes its shard and a
partial manifest ``parts/part-NNNNN.json``: its clips, stream dims, and per-stream sums
(count, sum, sum of squares over train frames) rather than means, because sums of parts add
up exactly. ``merge_parts`` checks every part of the run is there, adds the sums, and writes
the one ``index.json`` that readers use.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from avflow_cli.data.schema import ClipRecord, ShardIndex, NormStats
from avflow_cli.errors import AvflowError
from avflow_cli.fsutil import atomic_path
from avflow_cli.stats import floor_std

PARTS_DIR = "parts"


def part_name(i: int) -> str:
    return f"part-{i:05d}.json"


@dataclass
class RunningStats:
    """Per-dimension count / sum / sum of squares of one stream (float64, mergeable)."""

    count: int = 0
    total: list[float] = field(default_factory=list)
    total_sq: list[float] = field(default_factory=list)

    def add(self, values: np.ndarray) -> None:
        """Accumulate rows of ``values`` (T, D)."""
        v = np.asarray(values, dtype=np.float64)
        if len(v) == 0:
            return
        s, sq = v.sum(axis=0), np.square(v).sum(axis=0)  # (D,)
        if self.count:
            s, sq = s + np.asarray(self.total), sq + np.asarray(self.total_sq)
        self.count += len(v)
        self.total, self.total_sq = s.tolist(), sq.tolist()

    def merge(self, other: "RunningStats") -> "RunningStats":
        if not other.count:
            return RunningStats(self.count, list(self.total), list(self.total_sq))
        if not self.count:
            return RunningStats(other.count, list(other.total), list(other.total_sq))
        if len(self.total) != len(other.total):
            raise AvflowError(f"cannot merge statistics of dims {len(self.total)} and {len(other.total)}")
        return RunningStats(
            self.count + other.count,
            (np.asarray(self.total) + other.total).tolist(),
            (np.asarray(self.total_sq) + other.total_sq).tolist(),
        )

    def finalize(self) -> NormStats:
        """Mean and (population) standard deviation, floored relative to the stream's median std.

        The floor is :func:`avflow_cli.stats.floor_std`, the rule the normaliser uses to
        recognise constant channels (normalised to 0), so the two can never disagree.
        """
        if not self.count:
            raise AvflowError("no training frames to compute normalisation statistics from")
        mean = np.asarray(self.total) / self.count
        var = np.maximum(np.asarray(self.total_sq) / self.count - mean**2, 0.0)
        return NormStats(mean=mean.tolist(), std=floor_std(np.sqrt(var)).tolist())


@dataclass
class PartManifest:
    """What one shard writer produced."""

    shard_index: int
    num_shards: int
    clips: list[ClipRecord]
    dims: dict[str, int]
    stats: dict[str, RunningStats]
    extractors: dict[str, str] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)

    def save(self, shard_dir: str | Path) -> Path:
        path = Path(shard_dir) / PARTS_DIR / part_name(self.shard_index)
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(asdict(self), indent=1))
        return path

    @classmethod
    def load(cls, path: str | Path) -> "PartManifest":
        try:
            obj = json.loads(Path(path).read_text())
            return cls(
                shard_index=int(obj["shard_index"]),
                num_shards=int(obj["num_shards"]),
                clips=[ClipRecord(**c) for c in obj["clips"]],
                dims={k: int(v) for k, v in obj["dims"].items()},
                stats={k: RunningStats(**v) for k, v in obj["stats"].items()},
                extractors=obj.get("extractors", {}),
                config=obj.get("config", {}),
            )
        except (OSError, json.JSONDecodeError, KeyError, TypeError) as err:
            raise AvflowError(f"{path}: unreadable partial manifest ({err})") from err


def merge_extractors(parts: list[PartManifest]) -> dict[str, str]:
    """One description per stream; streams made differently in different shards list all."""
    seen: dict[str, list[str]] = {}
    for p in parts:
        for k, v in p.extractors.items():
            if v not in seen.setdefault(k, []):
                seen[k].append(v)
    return {k: " + ".join(v) for k, v in seen.items()}


def merge_parts(shard_dir: str | Path) -> ShardIndex:
    """Merge ``parts/part-*.json`` into ``index.json`` (written atomically); return the index."""
    shard_dir = Path(shard_dir)
    paths = sorted((shard_dir / PARTS_DIR).glob("part-*.json"))
    if not paths:
        raise AvflowError(f"{shard_dir}: no partial manifests in {PARTS_DIR}/ (run `avflow prep shards` first)")
    parts = [PartManifest.load(p) for p in paths]
    counts = {p.num_shards for p in parts}
    if len(counts) != 1:
        raise AvflowError(f"{shard_dir}: partial manifests disagree on the number of shards {sorted(counts)}")
    n = counts.pop()
    missing = sorted(set(range(n)) - {p.shard_index for p in parts})
    if missing:
        raise AvflowError(f"{shard_dir}: shards {missing} of {n} have not been written yet")
    configs = {json.dumps(p.config, sort_keys=True) for p in parts}
    if len(configs) != 1:
        raise AvflowError(f"{shard_dir}: shards were written with different settings; rerun them with one configuration")
    dims: dict[str, int] = {}
    stats: dict[str, RunningStats] = {}
    clips: list[ClipRecord] = []
    for p in sorted(parts, key=lambda p: p.shard_index):
        for k, d in p.dims.items():
            if dims.setdefault(k, d) != d:
                raise AvflowError(f"{shard_dir}: stream {k} has dim {dims[k]} in one shard and {d} in another")
        for k, s in p.stats.items():
            stats[k] = stats.get(k, RunningStats()).merge(s)
        clips.extend(p.clips)
    ids = [c.id for c in clips]
    if len(ids) != len(set(ids)):
        raise AvflowError(f"{shard_dir}: duplicate clip ids across shards")
    if not clips:
        raise AvflowError(f"{shard_dir}: the shards hold no clips")
    index = ShardIndex(
        clips=clips,
        dims=dims,
        stats={k: s.finalize() for k, s in stats.items() if s.count},
        config=parts[0].config | {"num_shards": n},
        extractors=merge_extractors(parts),
    )
    index.save(shard_dir)
    return index
