"""Text-to-tokens model directories (docs/ARCHITECTURE.md §4): ``config.json`` kind "t2t" + ``model.safetensors``.

Loading is the registry's (:func:`avflow_cli.models.registry.load_t2t`, re-exported here).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from avflow_cli.models.registry import load_t2t, save_model_dir
from avflow_cli.models.text2tokens.config import T2TConfig
from avflow_cli.models.text2tokens.model import TextToTokens

__all__ = ["KIND", "normalization_of", "save_t2t", "import_release_t2t", "load_t2t"]

KIND = "t2t"


def normalization_of(cfg: T2TConfig) -> dict[str, Any]:
    """The token normalisation recorded in ``config.json`` (tokens = y · std + mean)."""
    return {"tokens": {"mean": cfg.token_mean, "std": cfg.token_std,
                       "source": "release constants" if cfg.preset == "release" else "training data"}}


def save_t2t(model_dir: str | Path, model: TextToTokens, *, train: dict[str, Any] | None = None) -> Path:
    """Write ``model`` as a complete model directory (each file atomic)."""
    cfg = model.config
    return save_model_dir(
        model_dir, KIND, cfg, model.state_dict(), normalization_of(cfg), preset=cfg.preset, train=train
    )


def import_release_t2t(checkpoint: str | Path, model_dir: str | Path) -> Path:
    """The authors' ``text_to_tokens.pth`` → an avflow model directory loadable by ``load_t2t``."""
    from avflow_cli.models.text2tokens.convert import convert_t2t_checkpoint

    cfg, state = convert_t2t_checkpoint(checkpoint)
    model = TextToTokens(cfg)
    model.load_state_dict(state, strict=True)
    return save_t2t(model_dir, model)
