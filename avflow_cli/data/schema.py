"""The shard schema (docs/ARCHITECTURE.md §4): which datasets a clip holds, their dims and the index format.

A shard directory holds ``shard-00000.h5`` … and ``index.json``. Each HDF5 file has one group
per clip (group name = clip id), each dataset time-aligned at ``FPS`` with T rows.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from avflow_cli import constants as K
from avflow_cli.errors import AvflowError
from avflow_cli.jsonfile import read_json

INDEX_NAME = "index.json"
INDEX_FORMAT = "avflow-shards"
INDEX_VERSION = 1
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class StreamSpec:
    """One per-frame dataset of a clip. ``dim`` None means "read from the data" (face codes)."""

    name: str
    dim: int | None
    dtype: str
    required: bool
    description: str


STREAMS: dict[str, StreamSpec] = {
    s.name: s
    for s in (
        StreamSpec("mel", K.N_MELS, "float32", True, "actor log-mel, BigVGAN recipe"),
        StreamSpec("tokens", K.TOKEN_DIM, "float32", True, "actor Wav2Vec2 ASR logits"),
        StreamSpec("face", None, "float32", True, "actor face expression codes"),
        StreamSpec("head_pose", K.HEAD_POSE_DIM, "float32", True, "quaternion wxyz + translation"),
        StreamSpec("head", K.HEAD_LATENT_DIM, "float32", False, "head-pose VAE latent mean"),
        StreamSpec("p_tokens", K.TOKEN_DIM, "float32", False, "participant Wav2Vec2 ASR logits"),
        StreamSpec("p_smirk", None, "float32", False, "participant SMIRK features (56 or 58)"),
        StreamSpec("valid", None, "bool", True, "frame has face and head tracking"),
    )
}


def shard_name(i: int) -> str:
    return f"shard-{i:05d}.h5"


@dataclass
class ClipRecord:
    """One clip in the manifest."""

    id: str
    shard: str
    frames: int
    split: str
    session: str = ""
    start_frame: int = 0  # offset of the clip inside its session, at FPS
    source: str = ""


@dataclass
class NormStats:
    """Per-dimension normalisation statistics of one stream, computed on the train split only."""

    mean: list[float]
    std: list[float]

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        return np.asarray(self.mean, np.float32), np.asarray(self.std, np.float32)


@dataclass
class ShardIndex:
    """The manifest ``index.json`` beside the shards."""

    clips: list[ClipRecord]
    dims: dict[str, int]
    stats: dict[str, NormStats] = field(default_factory=dict)
    fps: float = K.FPS
    config: dict[str, Any] = field(default_factory=dict)
    extractors: dict[str, str] = field(default_factory=dict)  # stream -> which extractor made it
    format: str = INDEX_FORMAT
    version: int = INDEX_VERSION

    # --- queries -----------------------------------------------------------------------------
    def split(self, name: str) -> list[ClipRecord]:
        return [c for c in self.clips if c.split == name]

    def has_stream(self, name: str) -> bool:
        return name in self.dims

    @property
    def hours(self) -> float:
        return sum(c.frames for c in self.clips) / self.fps / 3600.0

    # --- (de)serialisation -------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> "ShardIndex":
        if obj.get("format") != INDEX_FORMAT:
            raise AvflowError(f"not an avflow shard index (format={obj.get('format')!r})")
        if int(obj.get("version", 0)) > INDEX_VERSION:
            raise AvflowError(f"shard index version {obj['version']} is newer than this avflow supports")
        return cls(
            clips=[ClipRecord(**c) for c in obj["clips"]],
            dims={k: int(v) for k, v in obj["dims"].items()},
            stats={k: NormStats(**v) for k, v in obj.get("stats", {}).items()},
            fps=float(obj.get("fps", K.FPS)),
            config=obj.get("config", {}),
            extractors=obj.get("extractors", {}),
            format=obj["format"],
            version=int(obj.get("version", INDEX_VERSION)),
        )

    @classmethod
    def load(cls, shard_dir: str | Path) -> "ShardIndex":
        path = Path(shard_dir) / INDEX_NAME
        if not path.is_file():
            raise AvflowError(f"{shard_dir}: no {INDEX_NAME} here; is this a shard directory (avflow prep shards)?")
        obj = read_json(path)
        return cls.from_json(obj)

    def save(self, shard_dir: str | Path) -> Path:
        from avflow_cli.fsutil import atomic_path

        path = Path(shard_dir) / INDEX_NAME
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(self.to_json(), indent=1))
        return path
