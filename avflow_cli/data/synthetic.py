"""Synthetic shards for tests and benchmarks: learnable, deterministic, no audio needed.

Tokens are one-hot character runs; mel, face and head streams are fixed smooth functions of
the tokens, so a model that learns anything lowers its loss. Not a substitute for the demo
corpus (which is real speech); this is for unit tests and speed benchmarks.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from avflow_cli import constants as K
from avflow_cli.data.schema import ClipRecord, ShardIndex, NormStats, shard_name
from avflow_cli.data.shards import write_shard


def synthetic_clip(frames: int, face_dim: int, rng: np.random.Generator, participant: bool = False) -> dict[str, np.ndarray]:
    """One clip of ``frames`` frames at FPS whose streams depend on its token sequence."""
    run = rng.integers(4, 12, size=frames)  # run lengths of characters
    chars = rng.integers(0, K.TOKEN_DIM, size=frames)
    ids = np.repeat(chars, run)[:frames]  # (T,)
    tokens = np.full((frames, K.TOKEN_DIM), -4.0, np.float32)
    tokens[np.arange(frames), ids] = 6.0
    proj_mel = np.random.default_rng(1).normal(size=(K.TOKEN_DIM, K.N_MELS)).astype(np.float32)
    proj_face = np.random.default_rng(2).normal(size=(K.TOKEN_DIM, face_dim)).astype(np.float32)
    onehot = np.eye(K.TOKEN_DIM, dtype=np.float32)[ids]  # (T, 29)
    kernel = np.hanning(9).astype(np.float32)
    kernel /= kernel.sum()
    smooth = np.stack([np.convolve(onehot[:, j], kernel, mode="same") for j in range(K.TOKEN_DIM)], 1)
    t = np.arange(frames, dtype=np.float32) / K.FPS
    angle = 0.1 * np.sin(2 * np.pi * 0.3 * t + rng.uniform(0, 6.28))
    quat = np.stack([np.cos(angle / 2), np.sin(angle / 2), np.zeros_like(t), np.zeros_like(t)], 1)
    trans = np.stack([np.zeros_like(t), 5 * np.sin(2 * np.pi * 0.2 * t), 1000 + 0 * t], 1)
    clip = {
        "mel": (smooth @ proj_mel - 5.0).astype(np.float32),
        "tokens": tokens,
        "face": (smooth @ proj_face * 0.5).astype(np.float32),
        "head_pose": np.concatenate([quat, trans], 1).astype(np.float32),
        "head": np.stack([angle] * K.HEAD_LATENT_DIM, 1).astype(np.float32),
        "valid": np.ones(frames, bool),
    }
    if participant:
        clip["p_tokens"] = np.roll(tokens, 40, axis=0)
        clip["p_smirk"] = rng.normal(size=(frames, K.SMIRK_DIM)).astype(np.float32) * 0.1
    return clip


def make_synthetic_shards(
    out_dir: str | Path,
    *,
    num_clips: int = 6,
    frames: int = 400,
    face_dim: int = 16,
    clips_per_shard: int = 3,
    participant: bool = False,
    seed: int = 0,
) -> ShardIndex:
    """Write a small shard directory (train/val/test split) and return its index."""
    out_dir = Path(out_dir)
    rng = np.random.default_rng(seed)
    splits = ["train"] * max(1, num_clips - 2) + ["val", "test"][: max(0, num_clips - 1)]
    records: list[ClipRecord] = []
    pending: dict[str, dict[str, np.ndarray]] = {}
    sums: dict[str, list[np.ndarray]] = {}
    for i in range(num_clips):
        clip_id = f"synthetic-{i:03d}--0000"
        clip = synthetic_clip(frames, face_dim, rng, participant)
        shard = shard_name(i // clips_per_shard)
        records.append(ClipRecord(id=clip_id, shard=shard, frames=frames, split=splits[i], session=f"synthetic-{i:03d}"))
        pending[clip_id] = clip
        if splits[i] == "train":
            for name, arr in clip.items():
                if arr.dtype != bool:
                    sums.setdefault(name, []).append(arr)
        if (i + 1) % clips_per_shard == 0 or i == num_clips - 1:
            write_shard(out_dir / shard, pending, attrs={"source": "synthetic"})
            pending = {}
    stats = {
        name: NormStats(mean=np.concatenate(a).mean(0).tolist(), std=(np.concatenate(a).std(0) + 1e-5).tolist())
        for name, a in sums.items()
    }
    first = records and synthetic_clip(2, face_dim, np.random.default_rng(0), participant)
    dims = {name: (1 if arr.ndim == 1 else arr.shape[1]) for name, arr in first.items()}
    index = ShardIndex(clips=records, dims=dims, stats=stats, extractors={"all": "synthetic"})
    index.save(out_dir)
    return index
