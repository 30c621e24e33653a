"""Per-stream normalisation, part of a model's config (docs/ARCHITECTURE.md §2).

``stats``: z-score every stream with the per-dimension mean/std that ``index.json`` holds
(computed on the train split). ``release``: the authors' constants (docs/release_format.md §3): mel
``(log-mel + 5.5366) / 2.1161``, waveform ÷ 1.1 before the mel, raw face codes and tokens, head
latents as the VAE gives them (the VAE itself z-scores the raw pose).

Constant channels: a channel whose training std is below ``REL_STD_FLOOR`` × the median std of
its stream (e.g. a token that never fires) carries no information, and z-scoring it would turn
inference-time deviations the model never saw (text-to-tokens' small errors on that token)
into 10–1000 σ inputs. Such a channel is normalised to 0 always and denormalised to its mean.
The rule (:func:`avflow_cli.stats.floor_std`, :func:`~avflow_cli.stats.constant_channels`)
lives in the leaf module :mod:`avflow_cli.stats`, shared with the shard index (``data/index.py``).

Waveform scale: the release divides the waveform by 1.1 before its mel. Mel magnitudes are
linear in the waveform, so in the log domain that is ``max(L − ln 1.1, ln 1e-5)`` of our log-mel
L (exact, clamp included); :meth:`Normalizer.normalize` applies it to the mel stream, and
:meth:`Normalizer.denormalize` adds ``ln 1.1`` back, so outside the normaliser a mel is always
the log-mel of the unscaled waveform (prep's mels, the vocoder's input), and the release's
"× 1.1 after the vocoder" is already accounted for.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from avflow_cli import constants as K
from avflow_cli.errors import AvflowError
from avflow_cli.stats import constant_channels, floor_std

RELEASE_MEL_MEAN = -5.5366
RELEASE_MEL_STD = 2.1161
RELEASE_WAVEFORM_SCALE = 1.1


class Normalizer:
    """Maps streams to and from the model's normalised space: ``(x − mean) / std`` per dim.

    Constant channels (see the module doc) map to 0 and back to their mean.
    """

    def __init__(self, kind: str, streams: dict[str, tuple[np.ndarray, np.ndarray]], waveform_scale: float = 1.0) -> None:
        self.kind = kind
        self.streams = {k: (np.asarray(m, np.float32), floor_std(s).astype(np.float32)) for k, (m, s) in streams.items()}
        # per stream: (mean, scale used by denormalize, 1/std used by normalize); 0 on constant channels
        self._apply: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        for k, (m, s) in self.streams.items():
            const = constant_channels(s)
            self._apply[k] = (m, np.where(const, 0.0, s).astype(np.float32), np.where(const, 0.0, 1.0 / s).astype(np.float32))
        if not waveform_scale > 0:
            raise AvflowError(f"normalisation waveform_scale must be positive, got {waveform_scale}")
        self.waveform_scale = float(waveform_scale)
        self._torch_cache: dict[tuple[str, str], tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}

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
        if p_smirk_dim:  # the release min-max scales SMIRK to [-1, 1] before the model (docs/release_format.md §7)
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

    def _stats(self, name: str, like: Any) -> tuple[Any, Any, Any]:
        """(mean, scale, inverse scale) of ``name`` as numpy or as tensors like ``like``."""
        if name not in self.streams:
            raise AvflowError(f"model normalisation has no stream {name!r} (has {sorted(self.streams)})")
        arrays = self._apply[name]
        if isinstance(like, torch.Tensor):
            key = (name, f"{like.device}")
            if key not in self._torch_cache:
                self._torch_cache[key] = tuple(torch.as_tensor(a, device=like.device) for a in arrays)  # type: ignore[assignment]
            return tuple(a.to(like.dtype) for a in self._torch_cache[key])
        return arrays

    def _log_shift(self, name: str) -> float:
        """ln(waveform scale) for the mel stream (0 elsewhere, and for scale 1)."""
        return math.log(self.waveform_scale) if name == "mel" and self.waveform_scale != 1.0 else 0.0

    def normalize(self, name: str, x: Any) -> Any:
        """(…, D) raw → normalised, numpy or torch. Mel: log-mel of the unscaled waveform."""
        mean, _, inv = self._stats(name, x)
        shift = self._log_shift(name)
        if shift:  # log-mel of waveform / scale, clamped as the mel recipe clamps
            floor = math.log(K.MEL_LOG_FLOOR)
            x = (x - shift).clamp_min(floor) if isinstance(x, torch.Tensor) else np.maximum(x - shift, floor)
        return (x - mean) * inv

    def denormalize(self, name: str, x: Any) -> Any:
        """Normalised → raw; constant channels come back as their mean."""
        mean, scale, _ = self._stats(name, x)
        return x * scale + mean + self._log_shift(name)

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
