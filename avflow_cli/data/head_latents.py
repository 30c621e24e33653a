"""Head-pose VAE latents written into shards (`avflow prep encode-head`).

Each clip's ``head_pose`` (T, 7) is encoded to latent means ``head`` (T, 8), shard by shard and
atomically, and ``index.json`` records the train-split statistics and which VAE (a fingerprint of
its weights) made them.

This module is the one seam between ``data/`` and ``models/`` (docs/INTERFACES.md, "Package
layering"): ``data/`` never imports ``models/``. The VAE arrives as a :class:`HeadEncoder` — a
pose → latent callable plus what identifies it — built by the caller that loaded the model
(``cli/prep_head.py``: ``HeadEncoder.of_vae(load_head_vae(dir), dir)``).
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from avflow_cli.console import progress
from avflow_cli.constants import WEIGHTS_NAME
from avflow_cli.data.schema import ShardIndex, NormStats
from avflow_cli.data.shards import CHUNK_FRAMES
from avflow_cli.errors import AvflowError
from avflow_cli.fsutil import atomic_path


def vae_fingerprint(model_dir: str | Path) -> str:
    """Short hash of a VAE's weights: shards record which VAE made their ``head`` stream."""
    digest = hashlib.sha256((Path(model_dir) / WEIGHTS_NAME).read_bytes()).hexdigest()
    return digest[:16]


@dataclass(frozen=True)
class HeadEncoder:
    """What encoding needs of a head-pose VAE: the seam through which ``data/`` uses a model."""

    encode: Callable[[np.ndarray], np.ndarray]  # raw pose (T, 7) float32 → latent means (T, latent_dim)
    latent_dim: int
    tag: str  # fingerprint of the weights: shards record which VAE made their head stream
    source: str  # the model directory, recorded in index.json (config.head_vae)

    @classmethod
    def of_vae(cls, vae: Any, model_dir: str | Path) -> "HeadEncoder":
        """From a loaded VAE (``.encode_mean``, ``.config.latent_dim``: a ``models.headvae.HeadVAE``) and its directory."""
        model_dir = Path(model_dir).resolve()
        return cls(vae.encode_mean, int(vae.config.latent_dim), vae_fingerprint(model_dir), str(model_dir))


def encode_head_into_shards(shard_dir: str | Path, encoder: HeadEncoder, force: bool = False) -> dict[str, int]:
    """Write ``head`` (T, latent_dim) latent means into every clip of every shard, atomically per shard.

    Shards already encoded by this encoder (same ``tag``) are skipped unless ``force``.
    Updates ``index.json``: dims, train-split statistics of ``head``, and the VAE used.
    Returns ``{"encoded": shards rewritten, "skipped": shards already done}``.
    """
    shard_dir = Path(shard_dir)
    index = ShardIndex.load(shard_dir)
    tag = encoder.tag
    train_ids = {c.id for c in index.split("train")}
    shards = sorted({c.shard for c in index.clips})
    counts = {"encoded": 0, "skipped": 0}
    s1 = np.zeros(encoder.latent_dim)
    s2 = np.zeros(encoder.latent_dim)
    n = 0
    with progress() as bar:
        task = bar.add_task("encode head", total=len(shards), status="")
        for shard in shards:
            path = shard_dir / shard
            if not path.is_file():
                raise AvflowError(f"{path}: listed in index.json but missing")
            with h5py.File(path, "r") as f:
                done = f.attrs.get("head_vae") == tag and all("head" in f[g] for g in f)
            if done and not force:
                counts["skipped"] += 1
            else:
                with atomic_path(path) as tmp:
                    shutil.copyfile(path, tmp)
                    with h5py.File(tmp, "r+") as f:
                        for clip_id in f:
                            group = f[clip_id]
                            if "head_pose" not in group:
                                raise AvflowError(f"{path}: clip {clip_id} has no head_pose to encode")
                            latent = np.asarray(encoder.encode(group["head_pose"][:].astype(np.float32)), np.float32)
                            if latent.shape != (len(group["head_pose"]), encoder.latent_dim):
                                raise AvflowError(f"{encoder.source}: encoded {clip_id} to shape {latent.shape}, "
                                                  f"expected ({len(group['head_pose'])}, {encoder.latent_dim})")
                            if "head" in group:
                                del group["head"]
                            group.create_dataset("head", data=latent, chunks=(min(CHUNK_FRAMES, len(latent)), latent.shape[1]),
                                                 compression="gzip", compression_opts=1, shuffle=True)
                        f.attrs["head_vae"] = tag
                counts["encoded"] += 1
            with h5py.File(path, "r") as f:  # statistics from what is now on disk
                for clip_id in f:
                    if clip_id in train_ids:
                        valid = f[clip_id]["valid"][:].astype(bool)
                        lat = f[clip_id]["head"][:][valid]
                        s1 += lat.astype(np.float64).sum(0)  # float64: E[x²] − mean² cancels
                        s2 += (lat.astype(np.float64) ** 2).sum(0)
                        n += len(lat)
            bar.update(task, advance=1, status=shard)
    if n == 0:
        raise AvflowError(f"{shard_dir}: no valid train frames to compute head-latent statistics")
    mean = s1 / n
    std = np.sqrt(np.maximum(s2 / n - mean**2, 0.0)) + 1e-5
    index.dims["head"] = encoder.latent_dim
    index.stats["head"] = NormStats(mean=mean.tolist(), std=std.tolist())
    index.extractors["head"] = f"headvae:{tag}"
    index.config["head_vae"] = encoder.source
    index.save(shard_dir)
    return counts
