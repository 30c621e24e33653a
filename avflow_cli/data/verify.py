"""`avflow data verify` / `data info`: check shards against their manifest, and summarise them.

verify opens every shard and checks, for every clip of the manifest, that its group exists,
every stream of the manifest's dims is there with the right shape and dtype, the length
equals the manifest's, and values are finite; it also flags groups the manifest doesn't know.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from avflow_cli.data.schema import SPLITS, STREAMS, ClipRecord, ShardIndex
from avflow_cli.errors import AvflowError, InputFileError

READ_BLOCK = 4096  # frames read at a time when checking values


@dataclass
class VerifyReport:
    clips_checked: int = 0
    shards_checked: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _check_dataset(clip_id: str, name: str, ds: h5py.Dataset, frames: int, dim: int | None) -> list[str]:
    where = f"{clip_id}/{name}"
    spec = STREAMS.get(name)
    if spec is None:
        return [f"{where}: unknown stream"]
    if ds.shape[0] != frames:
        return [f"{where}: {ds.shape[0]} frames, manifest says {frames}"]
    if spec.dtype == "bool":
        return [] if ds.ndim == 1 and ds.dtype == bool else [f"{where}: expected (T,) bool, got {ds.shape} {ds.dtype}"]
    if ds.ndim != 2 or (dim is not None and ds.shape[1] != dim):
        return [f"{where}: expected (T, {dim}), got {ds.shape}"]
    for a in range(0, frames, READ_BLOCK):
        if not np.isfinite(ds[a : a + READ_BLOCK]).all():
            return [f"{where}: non-finite values"]
    return []


def verify_shards(shard_dir: str | Path, on_clip: Any = None) -> VerifyReport:
    """Every shard against the manifest; problems are collected, not raised."""
    shard_dir = Path(shard_dir)
    index = ShardIndex.load(shard_dir)
    report = VerifyReport()
    by_shard: dict[str, list] = {}
    for clip in index.clips:
        by_shard.setdefault(clip.shard, []).append(clip)
        if clip.split not in SPLITS:
            report.problems.append(f"{clip.id}: unknown split {clip.split!r}")
    required = [n for n, s in STREAMS.items() if s.required]
    for shard, clips in sorted(by_shard.items()):
        path = shard_dir / shard
        if not path.is_file():
            report.problems.append(f"{shard}: file missing ({len(clips)} clips)")
            continue
        try:
            with h5py.File(path, "r") as f:
                report.shards_checked += 1
                extra = set(f.keys()) - {c.id for c in clips}
                if extra:
                    report.problems.append(f"{shard}: groups not in the manifest: {sorted(extra)[:5]}")
                for clip in clips:
                    report.clips_checked += 1
                    if clip.id not in f:
                        report.problems.append(f"{shard}: clip {clip.id} missing")
                        continue
                    group = f[clip.id]
                    for name in set(index.dims) | set(required):
                        if name not in group:
                            report.problems.append(f"{clip.id}: stream {name} missing")
                            continue
                        dim = None if STREAMS.get(name) and STREAMS[name].dtype == "bool" else index.dims.get(name)
                        report.problems += _check_dataset(clip.id, name, group[name], clip.frames, dim)
                    if on_clip:
                        on_clip()
        except OSError as err:
            report.problems.append(f"{shard}: unreadable HDF5 file ({err})")
    for name, stats in index.stats.items():
        dim = index.dims.get(name)
        if dim is not None and (len(stats.mean) != dim or len(stats.std) != dim):
            report.problems.append(f"index.json: stats of {name} have {len(stats.mean)} dims, stream has {dim}")
        if not (np.isfinite(stats.mean).all() and np.isfinite(stats.std).all() and min(stats.std, default=1) > 0):
            report.problems.append(f"index.json: stats of {name} are not finite and positive")
    return report


def shard_problems(
    shard_dir: str | Path, index: ShardIndex | None = None, clips: list[ClipRecord] | None = None,
    streams: list[str] | None = None,
) -> list[str]:
    """Cheap pre-flight of the shards a job will read (no values checked: see :func:`verify_shards`).

    Every shard holding one of ``clips`` (default: all) must exist and open, hold each clip's
    group with ``streams`` (default: the manifest's and the required ones) at the manifest's
    frame count, and give back its last frame (a truncated file fails there). Seconds for the
    50 h corpus, so jobs run it before they create anything.
    """
    shard_dir = Path(shard_dir)
    index = index if index is not None else ShardIndex.load(shard_dir)
    clips = index.clips if clips is None else clips
    names = streams if streams is not None else sorted(set(index.dims) | {n for n, s in STREAMS.items() if s.required})
    by_shard: dict[str, list[ClipRecord]] = {}
    for clip in clips:
        by_shard.setdefault(clip.shard, []).append(clip)
    problems = []
    for shard, members in sorted(by_shard.items()):
        path = shard_dir / shard
        if not path.is_file():
            problems.append(f"{path}: shard missing ({len(members)} clips of the manifest)")
            continue
        try:
            with h5py.File(path, "r") as f:
                for clip in members:
                    if clip.id not in f:
                        problems.append(f"{path}: clip {clip.id} missing")
                        continue
                    group = f[clip.id]
                    for name in names:
                        if name not in group:
                            if name in index.dims or (name in STREAMS and STREAMS[name].required):
                                problems.append(f"{path}: clip {clip.id} has no {name} stream")
                            continue
                        ds = group[name]
                        if ds.shape[0] != clip.frames:
                            problems.append(f"{path}: {clip.id}/{name} has {ds.shape[0]} frames, the manifest {clip.frames}")
                        elif clip.frames:
                            ds[clip.frames - 1]  # noqa: B018 - reading the last frame finds truncation
        except (OSError, KeyError, ValueError, RuntimeError) as err:
            reason = str(err).splitlines()[0] if str(err) else type(err).__name__
            problems.append(f"{path}: unreadable HDF5 shard ({reason[:160]})")
    return problems


def check_shards_readable(
    shard_dir: str | Path, index: ShardIndex | None = None, clips: list[ClipRecord] | None = None,
    streams: list[str] | None = None,
) -> None:
    """:func:`shard_problems` as a one-line :class:`InputFileError` naming the first problem."""
    problems = shard_problems(shard_dir, index, clips, streams)
    if problems:
        more = f" (and {len(problems) - 1} more problems; `avflow data verify` lists them)" if len(problems) > 1 else ""
        first = problems[0]
        path, _, problem = first.partition(": ")
        raise InputFileError(path, problem + more)


def shard_info(shard_dir: str | Path, *, check_files: bool = True) -> dict[str, Any]:
    """Clip counts, hours per split and per-stream dims / mean / std summary from the manifest.

    With ``check_files`` the summary's ``problems`` lists missing or unreadable shards
    (:func:`shard_problems`): the manifest's hours count only if its shards can be read.
    """
    index = ShardIndex.load(shard_dir)
    if not index.clips:
        raise AvflowError(f"{shard_dir}: the manifest lists no clips")
    splits = {}
    for split in SPLITS:
        clips = index.split(split)
        splits[split] = {
            "clips": len(clips),
            "sessions": len({c.session for c in clips}),
            "hours": sum(c.frames for c in clips) / index.fps / 3600,
        }
    streams = {}
    for name, dim in index.dims.items():
        st = index.stats.get(name)
        streams[name] = {
            "dim": dim,
            "mean": float(np.mean(st.mean)) if st else None,
            "std": float(np.mean(st.std)) if st else None,
            "extractor": index.extractors.get(name, ""),
        }
    return {
        "clips": len(index.clips),
        "sessions": len({c.session for c in index.clips}),
        "shards": len({c.shard for c in index.clips}),
        "hours": index.hours,
        "fps": index.fps,
        "splits": splits,
        "streams": streams,
        "problems": shard_problems(shard_dir, index) if check_files else [],
    }
