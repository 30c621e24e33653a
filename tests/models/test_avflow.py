"""AV-Flow network: shapes for every fusion variant, AdaLN-Zero identity at init, time embedding."""

from __future__ import annotations

import math

import pytest
import torch

from avflow_cli.models.avflow import AVFlow, drop_guidance
from avflow_cli.models.config import AVFlowConfig, FUSION_VARIANTS, avflow_preset
from avflow_cli.models.dit import DiTBlock, TimeEmbedding


def small(**kw) -> AVFlowConfig:
    return AVFlowConfig(face_dim=12, d_model=32, hidden_dim=48, heads=4, depth=2, attn_block=8, **kw)


@pytest.mark.parametrize("fusion", FUSION_VARIANTS)
def test_forward_shapes(fusion: str) -> None:
    cfg = small(fusion=fusion, participant_tokens=True, participant_visual_dim=56)
    model = AVFlow(cfg)
    x = torch.randn(3, 50, cfg.x_dim)
    cond = torch.randn(3, 50, cfg.cond_dim)
    assert cfg.cond_dim == 29 + 29 + 56
    v = model(x, torch.rand(3), cond)
    assert v.shape == (3, 50, 12 + 8 + 80)
    assert torch.isfinite(v).all()


def test_variants_differ_in_stream_coupling() -> None:
    """separate: the mel output ignores the visual input; highway: it does not."""
    torch.manual_seed(0)
    for fusion, coupled in (("separate", False), ("highway", True)):
        model = AVFlow(small(fusion=fusion))
        for p in model.parameters():  # leave the AdaLN-Zero identity so blocks do something
            p.data.normal_(0, 0.2)
        x = torch.randn(1, 20, model.config.x_dim)
        cond = torch.randn(1, 20, 29)
        v1 = model(x, torch.tensor([0.5]), cond)
        x2 = x.clone()
        x2[..., :12] += 1.0  # change face only
        v2 = model(x2, torch.tensor([0.5]), cond)
        mel_changed = (v2[..., -80:] - v1[..., -80:]).abs().max().item() > 1e-5
        assert mel_changed == coupled, fusion


def test_adaln_zero_block_is_identity_at_init() -> None:
    block = DiTBlock(32, 64, 4, 7, 2, 1e4, 8)
    x = torch.randn(2, 19, 32)
    temb = torch.randn(2, 32)
    torch.testing.assert_close(block(x, temb), x)
    alpha_w = block.attn_mod.proj.weight[:32]
    assert alpha_w.abs().max() == 0 and block.attn_mod.proj.bias.abs().max() == 0
    assert block.attn_mod.proj.weight[32:].abs().max() > 0  # beta/gamma keep the default init


def test_time_embedding_formula() -> None:
    emb = TimeEmbedding(64)
    t = torch.tensor([0.0, 0.25, 1.0])
    k = torch.arange(8, dtype=torch.float32)
    f = torch.exp(-k * math.log(1e4) / 7)
    feats = torch.cat([torch.sin(t[:, None] * f), torch.cos(t[:, None] * f)], -1)
    expect = emb.fc2(torch.nn.functional.gelu(emb.fc1(feats)))
    torch.testing.assert_close(emb(t), expect)


def test_drop_guidance_zeroes_only_guidance_channels() -> None:
    cfg = small(participant_tokens=True, participant_visual_dim=56)
    cond = torch.ones(64, 10, cfg.cond_dim)
    out = drop_guidance(cond, cfg, 0.5, torch.Generator().manual_seed(0))
    assert torch.equal(out[..., :29], cond[..., :29])
    dropped = out[..., 29:].sum((1, 2)) == 0
    assert 10 < int(dropped.sum()) < 54  # about half the samples
    assert torch.equal(out[~dropped][..., 29:], cond[~dropped][..., 29:])


def test_base_preset_matches_the_paper_and_release_size() -> None:
    base, _ = avflow_preset("base")
    assert (base.depth, base.d_model, base.hidden_dim, base.heads) == (8, 512, 1024, 4)
    assert (base.window_left, base.window_right, base.steps) == (7, 2, 8)
    release, rtrain = avflow_preset("release")
    assert (release.window_left, release.window_right, release.steps, rtrain.segment_frames) == (16, 8, 16, 345)
    with torch.device("meta"):
        n = AVFlow(release).num_parameters()
    assert n == 67_935_576  # docs/release_format.md §1
