"""Load the authors' released checkpoints into avflow's ``release`` preset (docs/release_format.md §1, §2, §4).

``av_flow_ckpt_50h.pt`` is ``{"iteration", "model_state_dict", "optimizer_state_dict"}`` with
every key prefixed ``diffusion_module.``; the head VAE checkpoint holds its bare state dict under
``model_state_dict``; head-pose z-score statistics live in four ``.npy`` files. Keys are renamed
with an explicit table, dims are read from the weight shapes, and the result must match our
module exactly (strict; any extra, missing or mis-shaped tensor is a one-line error).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from avflow_cli import constants as K
from avflow_cli.errors import AvflowError, InputFileError
from avflow_cli.models.config import AVFlowConfig, HeadVAEConfig, avflow_preset
from avflow_cli.models.registry import check_state_dict, save_model_dir
from avflow_cli.npzfile import read_npy

PREFIX = "diffusion_module."

# release key (after the prefix) → avflow key; {i} is a block index, {s} the stream
_BLOCK_MAP = {
    "self_attn.ada_ln.linear": "attn_mod.proj",
    "self_attn.self_attn.qkv": "attn.qkv",
    "self_attn.self_attn.project": "attn.out",
    "feedforward.ada_ln.linear": "mlp_mod.proj",
    "feedforward.block.0": "mlp.fc1",
    "feedforward.block.3": "mlp.fc2",
}
_TOP_MAP = {
    "time_embed.mlp.0": "time_embed.fc1",
    "time_embed.mlp.2": "time_embed.fc2",
    "input_proj_v": "in_visual",
    "input_proj_a": "in_audio",
    "out_v": "out_visual",
    "out_a": "out_audio",
}
_STREAM = {"v": "visual_blocks", "a": "audio_blocks"}
_BLOCK_RE = re.compile(r"^transformer_blocks_([va])\.(\d+)\.(.+)\.(weight|bias)$")
_FUSION_RE = re.compile(r"^fusion\.(\d+)\.(weight|bias)$")

_VAE_MAP = {
    "encoder.0": "enc_in",
    "fc_mu": "to_mu",
    "fc_var": "to_logvar",
    "decoder_input": "dec_in",
    "final_layer": "dec_out",
}
_VAE_LAYER_RE = re.compile(r"^(encoder\.1|decoder\.0)\.layers\.(\d+)\.(.+)$")
HEAD_STATS_FILES = ("head_qvec_mean.npy", "head_qvec_std.npy", "head_translation_mean.npy", "head_translation_std.npy")


def _load_pt(path: str | Path) -> Any:
    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, "checkpoint not found")
    from avflow_cli.torchfile import load_torch_file

    return load_torch_file(path)  # weights only: never runs code


def rename_avflow_key(key: str) -> str:
    """One release key (without prefix) → avflow key; unknown keys raise."""
    m = _BLOCK_RE.match(key)
    if m:
        stream, i, sub, kind = m.groups()
        if sub not in _BLOCK_MAP:
            raise KeyError(key)
        return f"{_STREAM[stream]}.{i}.{_BLOCK_MAP[sub]}.{kind}"
    if _FUSION_RE.match(key):
        return key
    base, _, kind = key.rpartition(".")
    if base in _TOP_MAP:
        return f"{_TOP_MAP[base]}.{kind}"
    raise KeyError(key)


def rename_headvae_key(key: str) -> str:
    """One release head-VAE key → avflow HeadVAE key; unknown keys raise."""
    m = _VAE_LAYER_RE.match(key)
    if m:
        side, i, rest = m.groups()
        return f"{'enc' if side == 'encoder.1' else 'dec'}_layers.{i}.{rest}"
    base, _, kind = key.rpartition(".")
    if base in _VAE_MAP:
        return f"{_VAE_MAP[base]}.{kind}"
    raise KeyError(key)


def _renamed_state(release_state: dict[str, torch.Tensor], rename: Callable[[str], str], source: str,
                   layout: str) -> dict[str, torch.Tensor]:
    """``release_state`` under avflow's key names; keys ``rename`` rejects (KeyError) are one error naming a few."""
    state: dict[str, torch.Tensor] = {}
    unknown = []
    for key, value in release_state.items():
        try:
            state[rename(key)] = value
        except KeyError:
            unknown.append(key)
    if unknown:
        raise AvflowError(f"{source}: {len(unknown)} keys unknown to the {layout} (e.g. {unknown[:3]})")
    return state


def convert_avflow_state(release_state: dict[str, torch.Tensor], source: str = "checkpoint",
                         heads: int = 4, window: tuple[int, int] = (16, 8)) -> tuple[AVFlowConfig, dict[str, torch.Tensor]]:
    """Release AVDiffusionWrapper state dict → (release-preset AVFlowConfig, avflow state dict)."""
    bad_prefix = [k for k in release_state if not k.startswith(PREFIX)]
    if bad_prefix:
        raise AvflowError(f"{source}: keys without the {PREFIX!r} prefix (e.g. {bad_prefix[0]!r}); "
                          "not an AV-Flow release checkpoint")
    state = _renamed_state(release_state, lambda key: rename_avflow_key(key[len(PREFIX):]), source, "release layout")
    try:
        d_model, in_v = state["in_visual.weight"].shape
        visual_dim = state["out_visual.weight"].shape[0]
        mel_dim = state["out_audio.weight"].shape[0]
        hidden = state["visual_blocks.0.mlp.fc1.weight"].shape[0]
    except KeyError as err:
        raise AvflowError(f"{source}: missing tensor {err} of the release layout") from err
    depth = 1 + max(int(k.split(".")[1]) for k in state if k.startswith("visual_blocks."))
    cond = in_v - visual_dim
    face_dim = visual_dim - K.HEAD_LATENT_DIM
    guidance = cond - K.TOKEN_DIM
    if guidance == 0:
        p_tok, p_vis = False, 0
    elif guidance == K.TOKEN_DIM:
        p_tok, p_vis = True, 0
    elif guidance == K.TOKEN_DIM + K.RELEASE_SMIRK_DIM:
        p_tok, p_vis = True, K.RELEASE_SMIRK_DIM
    else:
        raise AvflowError(f"{source}: condition width {cond} is none of the release's 29 / 58 / 116")
    model_cfg, _ = avflow_preset("release")
    cfg = AVFlowConfig(**{**model_cfg.__dict__, "face_dim": int(face_dim), "mel_dim": int(mel_dim), "d_model": int(d_model),
                          "hidden_dim": int(hidden), "depth": int(depth), "heads": heads, "window_left": window[0],
                          "window_right": window[1], "participant_tokens": p_tok, "participant_visual_dim": p_vis})
    from avflow_cli.models.avflow import AVFlow

    check_state_dict(AVFlow(cfg), state, source)
    return cfg, state


def convert_avflow_checkpoint(path: str | Path, heads: int = 4, window: tuple[int, int] = (16, 8)) -> tuple[AVFlowConfig, dict[str, torch.Tensor]]:
    """``av_flow_ckpt_50h.pt`` → (AVFlowConfig of the ``release`` preset, state dict for AVFlow)."""
    ckpt = _load_pt(path)
    if not isinstance(ckpt, dict) or "model_state_dict" not in ckpt:
        raise InputFileError(path, "no 'model_state_dict' entry; not an AV-Flow release checkpoint")
    return convert_avflow_state(ckpt["model_state_dict"], str(path), heads, window)


def read_head_stats(stats_dir: str | Path) -> tuple[list[float], list[float]]:
    """The release's head-pose z-score stats → (mean 7, std 7) as [qw qx qy qz tx ty tz]."""
    stats_dir = Path(stats_dir)
    arrays = []
    for name in HEAD_STATS_FILES:
        path = stats_dir / name
        if not path.is_file():
            raise InputFileError(path, "missing head-pose statistics file (headpose/headpose_normstats/)")
        values = read_npy(path, max_elements=16)  # plain numbers only: an object array is refused, never unpickled
        if values.dtype.kind not in "fiu":
            raise InputFileError(path, f"head-pose statistics must be numbers, got {values.dtype}")
        arrays.append(values.astype(np.float64).reshape(-1))
    qm, qs, tm, ts = arrays
    if len(qm) != 4 or len(qs) != 4 or len(tm) != 3 or len(ts) != 3:
        raise InputFileError(stats_dir, "head stats must hold 4 quaternion and 3 translation values")
    return np.concatenate([qm, tm]).tolist(), np.concatenate([qs, ts]).tolist()


def convert_headvae_state(release_state: dict[str, torch.Tensor], source: str = "checkpoint") -> tuple[HeadVAEConfig, dict[str, torch.Tensor]]:
    """Release TransformerEncoderVAE state dict → (HeadVAEConfig, avflow HeadVAE state dict)."""
    state = _renamed_state(release_state, rename_headvae_key, source, "release head VAE")
    try:
        hidden, input_dim = state["enc_in.weight"].shape
        latent = state["to_mu.weight"].shape[0]
        ff = state["enc_layers.0.linear1.weight"].shape[0]
    except KeyError as err:
        raise AvflowError(f"{source}: missing tensor {err} of the release head VAE") from err
    layers = 1 + max(int(k.split(".")[1]) for k in state if k.startswith("enc_layers."))
    cfg = HeadVAEConfig(input_dim=int(input_dim), latent_dim=int(latent), hidden=int(hidden), layers=layers, heads=1,
                        ff_dim=int(ff), pose_mean=[0.0] * int(input_dim), pose_std=[1.0] * int(input_dim))
    from avflow_cli.models.headvae import HeadVAE

    check_state_dict(HeadVAE(cfg), state, source)
    return cfg, state


def convert_headvae_checkpoint(path: str | Path, stats_dir: str | Path | None) -> tuple[HeadVAEConfig, dict[str, torch.Tensor]]:
    """``head_vae/iter-0500000.pt`` (+ head-pose stats dir) → (HeadVAEConfig, state dict).

    The z-score statistics become ``config.pose_mean/pose_std`` so the loaded VAE takes raw poses.
    """
    ckpt = _load_pt(path)
    if not isinstance(ckpt, dict) or "model_state_dict" not in ckpt:
        raise InputFileError(path, "no 'model_state_dict' entry; not a head VAE checkpoint")
    cfg, state = convert_headvae_state(ckpt["model_state_dict"], str(path))
    if stats_dir is not None:
        cfg.pose_mean, cfg.pose_std = read_head_stats(stats_dir)
    return cfg, state


def write_release_model_dirs(
    avflow_ckpt: str | Path, out_dir: str | Path, head_vae_ckpt: str | Path | None = None, stats_dir: str | Path | None = None
) -> dict[str, Path]:
    """Convert the release into ``out_dir/avflow`` (+ ``out_dir/headvae``) model directories."""
    from avflow_cli.models.normalize import Normalizer

    out_dir = Path(out_dir)
    cfg, state = convert_avflow_checkpoint(avflow_ckpt)
    norm = Normalizer.for_config(cfg).to_json()
    written = {}
    components = {}
    if head_vae_ckpt is not None:
        vcfg, vstate = convert_headvae_checkpoint(head_vae_ckpt, stats_dir)
        written["headvae"] = save_model_dir(out_dir / "headvae", "headvae", vcfg, vstate, None, preset="release")
        components["head_vae"] = "../headvae"
    written["avflow"] = save_model_dir(out_dir / "avflow", "avflow", cfg, state, norm, preset="release", components=components)
    return written
