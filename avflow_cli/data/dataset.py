"""Training windows from a shard directory: random fixed-length windows, deterministic by step.

Window choice is a pure function of (seed, step, rank): step s draws ``world × batch`` windows
from one RNG seeded with (seed, s) and rank r keeps its slice (DistributedSampler-style
sharding without a sampler state). The "data position" of a run is therefore just its step, and
a resumed run reads exactly the windows an uninterrupted one would. Windows are uniform over
every (clip, start) pair of the split (as the release's sampler); clips shorter than the window
are padded, with ``frame_mask`` (real frames) and ``valid`` (face/head tracked) False on the
padding. Each process keeps its own open h5py handles and reads only the frames of the window.

Masks per stream (AV-Flow): the mel is a target on every real frame, face and head only where
tracked; padded frames are 0 in *normalised* space (pad after normalising) and hidden from
attention through ``frame_mask``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch

from avflow_cli.data.schema import ClipRecord, ShardIndex
from avflow_cli.errors import AvflowError, InputFileError

Example = dict[str, np.ndarray]


class WindowReader:
    """Reads (clip, start, length) windows of some streams; h5py files stay open per process."""

    def __init__(self, shard_dir: str | Path, clips: Sequence[ClipRecord], streams: Sequence[str], frames: int) -> None:
        self.shard_dir = Path(shard_dir)
        self.clips = list(clips)
        self.streams = list(streams)
        self.frames = int(frames)
        self._files: dict[str, h5py.File] = {}
        self._pid = os.getpid()

    def __getstate__(self) -> dict[str, Any]:  # DataLoader workers open their own handles
        state = dict(self.__dict__)
        state["_files"] = {}
        return state

    def _file(self, shard: str) -> h5py.File:
        if self._pid != os.getpid():
            self._files, self._pid = {}, os.getpid()
        if shard not in self._files:
            path = self.shard_dir / shard
            try:
                self._files[shard] = h5py.File(path, "r")
            except OSError as err:
                raise InputFileError(path, f"cannot open shard ({err})") from err
        return self._files[shard]

    def read(self, clip_idx: int, start: int) -> Example:
        """Streams (frames, D) float32, ``valid`` and ``frame_mask`` (frames,) bool.

        Past the clip end raw values are zero-padded (transforms neutralise them after normalising)
        and both masks are False.
        """
        clip = self.clips[clip_idx]
        stop = min(start + self.frames, clip.frames)
        try:
            group = self._file(clip.shard)[clip.id]
            out: Example = {}
            for name in self.streams + ["valid"]:
                data = np.asarray(group[name][start:stop])
                if name != "valid":
                    data = data.astype(np.float32, copy=False)
                if len(data) < self.frames:
                    pad = np.zeros((self.frames - len(data),) + data.shape[1:], data.dtype)
                    data = np.concatenate([data, pad])
                out[name] = data
        except KeyError as err:
            raise InputFileError(self.shard_dir / clip.shard, f"clip {clip.id}: missing {err}") from err
        out["valid"] = out["valid"].astype(bool)
        out["frame_mask"] = np.arange(self.frames) < stop - start
        return out


class RandomWindows(torch.utils.data.Dataset):
    """Item ``step`` = this rank's batch for that step, as a dict of stacked tensors."""

    def __init__(self, reader: WindowReader, batch_size: int, seed: int, transform: Callable[[Example], Example],
                 rank: int = 0, world: int = 1, num_steps: int = 1 << 40) -> None:
        if not reader.clips:
            raise AvflowError(f"{reader.shard_dir}: the train split has no clips")
        self.reader, self.batch_size, self.seed = reader, batch_size, seed
        self.transform, self.rank, self.world, self.num_steps = transform, rank, world, num_steps
        starts = np.array([max(1, c.frames - reader.frames + 1) for c in reader.clips], np.float64)
        self.weights = starts / starts.sum()  # uniform over (clip, start) pairs

    def __len__(self) -> int:
        return self.num_steps

    def windows(self, step: int) -> list[tuple[int, int]]:
        rng = np.random.default_rng([self.seed, step])
        n = self.world * self.batch_size
        clip_idx = rng.choice(len(self.reader.clips), size=n, p=self.weights)
        out = []
        for c in clip_idx:
            span = max(1, self.reader.clips[c].frames - self.reader.frames + 1)
            out.append((int(c), int(rng.integers(0, span))))
        return out[self.rank * self.batch_size : (self.rank + 1) * self.batch_size]

    def __getitem__(self, step: int) -> dict[str, torch.Tensor]:
        examples = [self.transform(self.reader.read(c, s)) for c, s in self.windows(step)]
        return collate(examples)


class FixedWindows(torch.utils.data.Dataset):
    """Deterministic validation windows covering each clip, capped.

    Consecutive windows; the last one ends at the clip end (overlapping its neighbour) rather than
    running past it, so only clips shorter than a window are padded.
    """

    def __init__(self, reader: WindowReader, limit: int, transform: Callable[[Example], Example]) -> None:
        self.reader, self.transform = reader, transform
        self.items: list[tuple[int, int]] = []
        for ci, clip in enumerate(reader.clips):
            self.items.extend((ci, start) for start in window_starts(clip.frames, reader.frames))
        # spread the cap across clips rather than exhausting the first ones
        if len(self.items) > limit:
            pick = np.linspace(0, len(self.items) - 1, limit).round().astype(int)
            self.items = [self.items[i] for i in pick]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> Example:
        return self.transform(self.reader.read(*self.items[i]))


def window_starts(clip_frames: int, frames: int) -> list[int]:
    """Starts of windows of ``frames`` covering a clip: consecutive, the last flush with the end."""
    if clip_frames <= frames:
        return [0]
    starts = list(range(0, clip_frames - frames + 1, frames))
    if starts[-1] + frames < clip_frames:
        starts.append(clip_frames - frames)
    return starts


def collate(examples: Sequence[Example]) -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy(np.stack([e[k] for e in examples])) for k in examples[0]}


def batches(dataset: RandomWindows, start_step: int, end_step: int, num_workers: int = 0) -> torch.utils.data.DataLoader:
    """Batches for steps [start_step, end_step) in order, prefetched by ``num_workers`` processes.

    The loader gets its own generator: creating it must not draw from the global torch RNG, or a
    resumed run would see different noise than an uninterrupted one.
    """
    return torch.utils.data.DataLoader(
        dataset, batch_size=None, sampler=range(start_step, end_step), num_workers=num_workers,
        generator=torch.Generator().manual_seed(start_step),
        persistent_workers=False, prefetch_factor=2 if num_workers else None,
    )


# ---------------------------------------------------------------------------------------------
# AV-Flow examples
# ---------------------------------------------------------------------------------------------
def check_avflow_dims(index: ShardIndex, cfg: Any, shard_dir: str | Path) -> None:
    """The shards must hold every stream the config reads, with matching dims."""
    want = {"face": cfg.face_dim, "head": cfg.head_dim, "mel": cfg.mel_dim, "tokens": cfg.token_dim}
    if cfg.participant_tokens:
        want["p_tokens"] = cfg.token_dim
    if cfg.participant_visual_dim:
        want["p_smirk"] = cfg.participant_visual_dim
    setting = {"face": "model.face_dim", "p_smirk": "model.participant_visual_dim"}
    for name, dim in want.items():
        if name not in index.dims:
            if name == "head":
                hint = " (run `avflow prep encode-head SHARDS --head-vae HEADVAE_RUN` first)"
            elif name.startswith("p_"):
                hint = (" (dyadic guidance needs the participant channel; prep it, or set "
                        "model.participant_tokens=false and model.participant_visual_dim=0)")
            else:
                hint = ""
            raise AvflowError(f"{shard_dir}: shards have no {name!r} stream{hint}")
        if index.dims[name] != dim:
            fix = f" (use --set {setting[name]}={index.dims[name]})" if name in setting else ""
            raise AvflowError(f"{shard_dir}: {name} has {index.dims[name]} dims but the config expects {dim}{fix}")


class AVFlowTransform:
    """Raw window → {"x": (T, F+8+80), "cond": (T, C), "valid": (T,), "frame_mask": (T,)}, normalised.

    ``valid`` = face/head tracked on a real frame (their loss mask), ``frame_mask`` = real frame
    (the mel's loss mask and the attention key mask). Face/head are 0 where untracked, every
    stream is 0 on padding, in normalised space. Picklable (DataLoader workers).
    """

    def __init__(self, cfg: Any, normalizer: Any) -> None:
        self.cfg, self.norm = cfg, normalizer

    def streams(self) -> list[str]:
        names = ["face", "head", "mel", "tokens"]
        if self.cfg.participant_tokens:
            names.append("p_tokens")
        if self.cfg.participant_visual_dim:
            names.append("p_smirk")
        return names

    def __call__(self, ex: Example) -> Example:
        n = self.norm
        frame = np.asarray(ex.get("frame_mask", np.ones(len(ex["valid"]), bool)), bool)  # (T,) real frames
        valid = np.asarray(ex["valid"], bool) & frame  # (T,) face/head tracked
        vis, real = valid[:, None], frame[:, None]
        x = np.concatenate([
            n.normalize("face", ex["face"]) * vis,  # untracked: no target (masked), neutral input
            n.normalize("head", ex["head"]) * vis,
            n.normalize("mel", ex["mel"]) * real,  # speech is real wherever the frame is
        ], 1)  # (T, F+8+80)
        parts = [n.normalize("tokens", ex["tokens"])]
        if self.cfg.participant_tokens:
            parts.append(n.normalize("p_tokens", ex["p_tokens"]))
        if self.cfg.participant_visual_dim:
            parts.append(n.normalize("p_smirk", ex["p_smirk"]))
        cond = np.concatenate(parts, 1) * real  # (T, C): padding is 0 after normalising
        return {"x": x.astype(np.float32), "cond": cond.astype(np.float32), "valid": valid, "frame_mask": frame}


class HeadPoseTransform:
    """Raw window → {"pose": (T, 7) z-scored, "valid": (T,)} for head-VAE training."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        self.mean, self.std = np.asarray(mean, np.float32), np.asarray(std, np.float32)

    def __call__(self, ex: Example) -> Example:
        pose = (ex["head_pose"] - self.mean) / self.std * ex["valid"][:, None]  # padding is never valid
        return {"pose": pose.astype(np.float32), "valid": ex["valid"]}


def split_reader(shard_dir: str | Path, index: ShardIndex, split: str, streams: Sequence[str], frames: int) -> WindowReader:
    return WindowReader(shard_dir, index.split(split), streams, frames)
