"""Release normalisation constants, shipped configs, and the converter's guidance inference."""

from __future__ import annotations

from importlib import resources

import numpy as np
import torch

from avflow_cli.models.avflow import AVFlow
from avflow_cli.models.config import AVFlowConfig, avflow_preset, resolve_configs
from avflow_cli.models.convert_release import PREFIX, convert_avflow_state
from avflow_cli.models.normalize import Normalizer


def test_release_normalisation_constants() -> None:
    cfg, _ = avflow_preset("release")
    norm = Normalizer.for_config(cfg)
    logmel = np.full((3, 80), -5.5366 + 2.1161 + np.log(1.1), np.float32)  # log-mel of w; the release's is of w / 1.1
    np.testing.assert_allclose(norm.normalize("mel", logmel), 1.0, rtol=1e-5)
    face = np.random.default_rng(0).normal(size=(3, 256)).astype(np.float32)
    np.testing.assert_array_equal(norm.normalize("face", face), face)  # raw face codes
    assert norm.waveform_scale == 1.1
    back = Normalizer.from_json(norm.to_json())
    np.testing.assert_allclose(back.denormalize("mel", norm.normalize("mel", logmel)), logmel, rtol=1e-6)


def _release_state(cfg: AVFlowConfig) -> dict[str, torch.Tensor]:
    """Our weights renamed to the release layout (inverse of the converter's table)."""
    inv = {"time_embed.fc1": "time_embed.mlp.0", "time_embed.fc2": "time_embed.mlp.2", "in_visual": "input_proj_v",
           "in_audio": "input_proj_a", "out_visual": "out_v", "out_audio": "out_a"}
    blk = {"attn_mod.proj": "self_attn.ada_ln.linear", "attn.qkv": "self_attn.self_attn.qkv",
           "attn.out": "self_attn.self_attn.project", "mlp_mod.proj": "feedforward.ada_ln.linear",
           "mlp.fc1": "feedforward.block.0", "mlp.fc2": "feedforward.block.3"}
    out = {}
    for k, v in AVFlow(cfg).state_dict().items():
        base, kind = k.rsplit(".", 1)
        if base.startswith(("visual_blocks", "audio_blocks")):
            stack, i, sub = base.split(".", 2)
            name = f"transformer_blocks_{'v' if stack == 'visual_blocks' else 'a'}.{i}.{blk[sub]}"
        else:
            name = inv.get(base, base)
        out[PREFIX + f"{name}.{kind}"] = v
    return out


def test_converter_infers_dyadic_condition_width() -> None:
    for p_tok, p_vis in ((False, 0), (True, 0), (True, 58)):
        cfg = AVFlowConfig(face_dim=6, d_model=16, hidden_dim=16, heads=4, depth=2, participant_tokens=p_tok,
                           participant_visual_dim=p_vis)
        got, state = convert_avflow_state(_release_state(cfg))
        assert (got.participant_tokens, got.participant_visual_dim, got.cond_dim) == (p_tok, p_vis, cfg.cond_dim)
        AVFlow(got).load_state_dict(state, strict=True)


def test_shipped_config_files_apply() -> None:
    path = resources.files("avflow_cli.configs") / "dyadic.toml"
    m, t, _ = resolve_configs(*avflow_preset("tiny"), str(path))
    assert (m.participant_tokens, m.participant_visual_dim, m.cond_dim) == (True, 56, 114)
