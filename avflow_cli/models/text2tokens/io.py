"""Text-to-tokens model directories (DESIGN.md §4): ``config.json`` kind "t2t" + ``model.safetensors``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from avflow_cli.errors import InputFileError
from avflow_cli.models.text2tokens.config import T2TConfig
from avflow_cli.models.text2tokens.model import TextToTokens

KIND = "t2t"


def normalization_of(cfg: T2TConfig) -> dict[str, Any]:
    """The token normalisation recorded in ``config.json`` (tokens = y · std + mean)."""
    return {"tokens": {"mean": cfg.token_mean, "std": cfg.token_std,
                       "source": "release constants" if cfg.preset == "release" else "training data"}}


def save_t2t(model_dir: str | Path, model: TextToTokens, *, train: dict[str, Any] | None = None) -> Path:
    """Write ``model`` as a complete model directory (each file atomic)."""
    from avflow_cli.models.registry import save_model_dir

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


def load_t2t(model_dir: str | Path, device: str | torch.device = "cpu") -> TextToTokens:
    """A ready text-to-tokens model (eval mode) with ``.synthesize(text, steps, length_scale, seed)``."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from avflow_cli.models.config import dataclass_from_dict
    from avflow_cli.models.registry import CONFIG_NAME, WEIGHTS_NAME, check_state_dict, read_config

    model_dir = Path(model_dir)
    obj = read_config(model_dir)
    if obj["kind"] != KIND:
        raise InputFileError(model_dir, f"holds a {obj['kind']!r} model, expected a text-to-tokens ('t2t') model")
    cfg = dataclass_from_dict(T2TConfig, obj["model"], f"{model_dir / CONFIG_NAME} model")
    weights = model_dir / WEIGHTS_NAME
    if not weights.is_file():
        raise InputFileError(weights, "missing; the model directory has a config but no weights")
    try:
        state = load_file(str(weights), device="cpu")
    except (SafetensorError, OSError) as err:
        raise InputFileError(weights, f"unreadable safetensors file ({err})") from err
    model = TextToTokens(cfg)
    check_state_dict(model, state, str(weights))
    model.load_state_dict(state, strict=True)
    model.model_dir = model_dir.resolve()
    return model.to(device).eval()
