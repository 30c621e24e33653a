"""Per-stream normalisation, part of a model's config (DESIGN.md §2).

``stats``: z-score every stream with the per-dimension mean/std that ``index.json`` holds
(computed on the train split). ``release``: the authors' constants (REFERENCE.md §3): mel
``(log-mel + 5.5366) / 2.1161``, waveform ÷ 1.1 before the mel, raw face codes and tokens, head
latents as the VAE gives them (the VAE itself z-scores the raw pose).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from avflow_cli.errors import AvflowError

RELEASE_MEL_MEAN = -5.5366
RELEASE_MEL_STD = 2.1161
RELEASE_WAVEFORM_SCALE = 1.1
MIN_STD = 1e-4  # a constant stream would otherwise blow up


class Normalizer:
    """Maps streams to and from the model's normalised space: ``(x − mean) / std`` per dim."""

    def __init__(self, kind: str, streams: dict[str, tuple[np.ndarray, np.ndarray]], waveform_scale: float = 1.0) -> None:
        self.kind = kind
        self.streams = {k: (np.asarray(m, np.float32), np.maximum(np.asarray(s, np.float32), MIN_STD)) for k, (m, s) in streams.items()}
        self.waveform_scale = waveform_scale
        self._torch_cache: dict[tuple[str, str], tuple[torch.Tensor, torch.Tensor]] = {}

    # --- construction ----------------------------------------------------------------------
    @classmethod
    def from_index(cls, index: Any, names: list[str]) -> "Normalizer":
        """Statistics of ``names`` from a :class:`~avflow_cli.data.schema.ShardIndex`."""
        missing = [n for n in names if n not in index.stats]
        if missing:
            raise AvflowError(f"shard index has no normalisation statistics for {missing}; re-run `avflow prep index`")
        return cls("stats", {n: index.stats[n].arrays() for n in names})

    @classmethod
    def release(cls, face_dim: int, head_dim: int, mel_dim: int, token_dim: int, p_tokens: bool = False,
                p_smirk_dim: int = 0) -> "Normalizer":
        """The release's constants: only the mel is scaled."""
        ident = lambda d: (np.zeros(d, np.float32), np.ones(d, np.float32))  # noqa: E731
        streams = {
            "mel": (np.full(mel_dim, RELEASE_MEL_MEAN, np.float32), np.full(mel_dim, RELEASE_MEL_STD, np.float32)),
            "face": ident(face_dim),
            "head": ident(head_dim),
            "tokens": ident(token_dim),
        }
        if p_tokens:
            streams["p_tokens"] = ident(token_dim)
        if p_smirk_dim:  # the release min-max scales SMIRK to [-1, 1] before the model (REFERENCE.md §7)
            streams["p_smirk"] = ident(p_smirk_dim)
        return cls("release", streams, RELEASE_WAVEFORM_SCALE)

    @classmethod
    def identity(cls, dims: dict[str, int]) -> "Normalizer":
        return cls("identity", {k: (np.zeros(d, np.float32), np.ones(d, np.float32)) for k, d in dims.items()})

    # --- (de)serialisation -----------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "waveform_scale": self.waveform_scale,
            "streams": {k: {"mean": m.tolist(), "std": s.tolist()} for k, (m, s) in self.streams.items()},
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> "Normalizer":
        try:
            streams = {k: (np.asarray(v["mean"]), np.asarray(v["std"])) for k, v in obj["streams"].items()}
            return cls(obj["kind"], streams, float(obj.get("waveform_scale", 1.0)))
        except (KeyError, TypeError) as err:
            raise AvflowError(f"malformed normalization block in config.json ({err})") from err

    # --- application -----------------------------------------------------------------------
    def has(self, name: str) -> bool:
        return name in self.streams

    def _stats(self, name: str, like: Any) -> tuple[Any, Any]:
        if name not in self.streams:
            raise AvflowError(f"model normalisation has no stream {name!r} (has {sorted(self.streams)})")
        mean, std = self.streams[name]
        if isinstance(like, torch.Tensor):
            key = (name, f"{like.device}")
            if key not in self._torch_cache:
                self._torch_cache[key] = (torch.as_tensor(mean, device=like.device), torch.as_tensor(std, device=like.device))
            m, s = self._torch_cache[key]
            return m.to(like.dtype), s.to(like.dtype)
        return mean, std

    def normalize(self, name: str, x: Any) -> Any:
        """(…, D) raw → normalised, numpy or torch."""
        mean, std = self._stats(name, x)
        return (x - mean) / std

    def denormalize(self, name: str, x: Any) -> Any:
        mean, std = self._stats(name, x)
        return x * std + mean

    @classmethod
    def for_config(cls, cfg: Any, index: Any = None) -> "Normalizer":
        """The normaliser an :class:`AVFlowConfig` asks for (``stats`` needs the shard index)."""
        if cfg.normalization == "release":
            return cls.release(cfg.face_dim, cfg.head_dim, cfg.mel_dim, cfg.token_dim, cfg.participant_tokens,
                               cfg.participant_visual_dim)
        if index is None:
            raise AvflowError("stats normalisation needs the shard index")
        return cls.from_index(index, model_streams(cfg))

    def dim(self, name: str) -> int:
        return int(self.streams[name][0].shape[0])


def model_streams(cfg: Any) -> list[str]:
    """The streams an AV-Flow config reads: targets, tokens, and the enabled guidance."""
    names = ["face", "head", "mel", "tokens"]
    if cfg.participant_tokens:
        names.append("p_tokens")
    if cfg.participant_visual_dim:
        names.append("p_smirk")
    return names
