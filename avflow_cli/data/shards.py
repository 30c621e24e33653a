"""Read and write clips in HDF5 shards (schema in :mod:`avflow_cli.data.schema`).

Datasets are chunked along time and compressed, so random 20 s windows read only the chunks
they touch. Writes go to a temporary file renamed into place: a shard either exists whole or
not at all.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from avflow_cli import __version__
from avflow_cli import constants as K
from avflow_cli.data.schema import STREAMS, ClipRecord
from avflow_cli.errors import AvflowError
from avflow_cli.fsutil import atomic_path

CHUNK_FRAMES = 256  # ≈ 3 s per chunk: small enough for random windows, large enough to compress


def check_clip_arrays(clip_id: str, arrays: Mapping[str, np.ndarray]) -> int:
    """Validate one clip's streams against the schema; return its frame count T."""
    missing = [n for n, s in STREAMS.items() if s.required and n not in arrays]
    if missing:
        raise AvflowError(f"clip {clip_id}: missing required streams {missing}")
    unknown = [n for n in arrays if n not in STREAMS]
    if unknown:
        raise AvflowError(f"clip {clip_id}: unknown streams {unknown}")
    lengths = {n: len(a) for n, a in arrays.items()}
    if len(set(lengths.values())) != 1:
        raise AvflowError(f"clip {clip_id}: streams differ in length {lengths}")
    for name, arr in arrays.items():
        spec = STREAMS[name]
        if spec.dtype == "bool":
            if arr.ndim != 1:
                raise AvflowError(f"clip {clip_id}: {name} must be (T,), got {arr.shape}")
            continue
        if arr.ndim != 2 or (spec.dim is not None and arr.shape[1] != spec.dim):
            raise AvflowError(f"clip {clip_id}: {name} must be (T, {spec.dim or 'D'}), got {arr.shape}")
        if not np.isfinite(arr).all():
            raise AvflowError(f"clip {clip_id}: {name} contains NaN or Inf")
    return next(iter(lengths.values()))


def write_shard(
    path: str | Path,
    clips: Mapping[str, Mapping[str, np.ndarray]],
    attrs: Mapping[str, Any] | None = None,
    compression: str | None = "gzip",
) -> Path:
    """Write ``{clip_id: {stream: array}}`` into one HDF5 shard, atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            f.attrs["fps"] = K.FPS
            f.attrs["avflow_version"] = __version__
            for key, value in (attrs or {}).items():
                f.attrs[key] = value
            for clip_id, arrays in clips.items():
                frames = check_clip_arrays(clip_id, arrays)
                group = f.create_group(clip_id)
                group.attrs["frames"] = frames
                for name, arr in arrays.items():
                    spec = STREAMS[name]
                    data = np.asarray(arr, dtype=spec.dtype)
                    chunks = (min(CHUNK_FRAMES, frames),) + data.shape[1:]
                    group.create_dataset(
                        name,
                        data=data,
                        chunks=chunks,
                        compression=compression,
                        compression_opts=1 if compression == "gzip" else None,
                        shuffle=compression is not None,
                    )
    return path


def read_clip(
    shard_dir: str | Path,
    clip: ClipRecord,
    streams: Iterable[str] | None = None,
    start: int = 0,
    stop: int | None = None,
) -> dict[str, np.ndarray]:
    """Read frames [start, stop) of ``streams`` (default: all present) of one clip."""
    path = Path(shard_dir) / clip.shard
    try:
        with h5py.File(path, "r") as f:
            return read_group(f[clip.id], streams, start, stop)
    except (OSError, KeyError) as err:
        raise AvflowError(f"{path}: cannot read clip {clip.id} ({err})") from err


def read_group(
    group: h5py.Group,
    streams: Iterable[str] | None = None,
    start: int = 0,
    stop: int | None = None,
) -> dict[str, np.ndarray]:
    """Read a time window of an open clip group; absent optional streams are skipped."""
    names = list(streams) if streams is not None else list(group.keys())
    out: dict[str, np.ndarray] = {}
    for name in names:
        if name not in group:
            if name in STREAMS and STREAMS[name].required:
                raise KeyError(f"stream {name!r} missing")
            continue
        out[name] = group[name][start:stop]
    return out


def clip_ids(path: str | Path) -> list[str]:
    """The clip ids stored in one shard file."""
    with h5py.File(path, "r") as f:
        return list(f.keys())
