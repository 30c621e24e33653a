"""The authors' ``text_to_tokens.pth`` (a raw state dict) → avflow ``release`` config + state dict.

Our module names equal the release's, so the mapping is the identity; the converter's job is
to read the file safely (``weights_only``), strip wrappers a user may have added (a
``state_dict`` key, DDP's ``module.`` prefix), check every key and shape strictly, and take
the token statistics from the file's ``mean``/``std`` buffers into the config.
"""

from __future__ import annotations

from pathlib import Path

import torch

from avflow_cli.errors import InputFileError
from avflow_cli.models.registry import check_state_dict
from avflow_cli.models.text2tokens.config import T2TConfig, preset


def _read_state(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise InputFileError(path, "file not found")
    from avflow_cli.torchfile import load_torch_file

    obj = load_torch_file(path)  # weights only: never runs code
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise InputFileError(path, "expected a state dict of tensors (the release's text_to_tokens.pth)")
    return {k.removeprefix("module."): v for k, v in obj.items()}


def _stat_value(t: torch.Tensor) -> float | list[float]:
    return float(t) if t.ndim == 0 else [float(v) for v in t.reshape(-1)]


def _count(state: dict[str, torch.Tensor], prefix: str, suffix: str) -> int:
    """How many indices i have a key ``prefix{i}{suffix}``."""
    n = 0
    while f"{prefix}{n}{suffix}" in state:
        n += 1
    return n


def _infer_dims(state: dict[str, torch.Tensor]) -> dict[str, object]:
    """Architecture sizes read off the tensor shapes (head counts are the release's: 2 and 2)."""
    try:
        dec = "decoder.estimator."
        n_blocks = _count(state, f"{dec}down_blocks.0.1.", ".norm1.weight")
        inner = state[f"{dec}down_blocks.0.1.0.attn1.to_q.weight"].shape[0]
        conv_1 = state["encoder.encoder.ffn_layers.0.conv_1.weight"]
        dp_1 = state["encoder.proj_w.conv_1.weight"]
        prenet_layers = _count(state, "encoder.prenet.conv_layers.", ".weight")
        return {
            "n_vocab": state["encoder.emb.weight"].shape[0],
            "n_channels": state["encoder.emb.weight"].shape[1],
            "n_feats": state["encoder.proj_m.weight"].shape[0],
            "filter_channels": conv_1.shape[0],
            "kernel_size": conv_1.shape[2],
            "n_layers": _count(state, "encoder.encoder.attn_layers.", ".conv_q.weight"),
            "prenet": prenet_layers > 0,
            "prenet_layers": prenet_layers or 3,
            "prenet_kernel": state["encoder.prenet.conv_layers.0.weight"].shape[2] if prenet_layers else 5,
            "filter_channels_dp": dp_1.shape[0],
            "kernel_size_dp": dp_1.shape[2],
            "channels": tuple(
                state[f"{dec}down_blocks.{i}.0.block1.block.0.weight"].shape[0]
                for i in range(_count(state, f"{dec}down_blocks.", ".0.res_conv.weight"))
            ),
            "n_blocks": n_blocks,
            "num_mid_blocks": _count(state, f"{dec}mid_blocks.", ".0.res_conv.weight"),
            "attention_head_dim": inner // 2,
        }
    except KeyError as err:
        raise KeyError(f"missing {err}") from None


def convert_t2t_checkpoint(path: str | Path) -> tuple[T2TConfig, dict[str, torch.Tensor]]:
    """Read the release checkpoint; returns (release config, state dict for ``TextToTokens``).

Sizes are read off the tensor shapes, so the release file gives exactly the ``release``
preset and smaller models of the same architecture (test fixtures) load the same way.

    Raises InputFileError naming the file when it is unreadable or not the release architecture.
    """
    from avflow_cli.models.text2tokens.model import TextToTokens

    path = Path(path)
    state = _read_state(path)
    try:
        overrides = _infer_dims(state)
    except KeyError as err:
        raise InputFileError(path, f"not a text-to-tokens checkpoint of the release's architecture ({err})") from None
    if "mean" in state and "std" in state:
        overrides |= {"token_mean": _stat_value(state["mean"]), "token_std": _stat_value(state["std"])}
    cfg = preset("release", **overrides)
    reference = TextToTokens(cfg)  # on CPU: building on the meta device is ~10x slower here
    check_state_dict(reference, state, f"{path} (release text-to-tokens)")
    return cfg, {k: v.float() for k, v in state.items()}
