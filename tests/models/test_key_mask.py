"""Key-padding mask: padded frames of a training window are invisible to the real frames."""

from __future__ import annotations

import pytest
import torch

from avflow_cli.models.attention import banded_window_attention, dense_window_attention
from avflow_cli.models.avflow import AVFlow
from avflow_cli.models.config import AVFlowConfig


@pytest.mark.parametrize("left,right,block", [(7, 2, 8), (16, 8, 5), (3, 9, 16)])
def test_banded_key_mask_equals_dense(left: int, right: int, block: int) -> None:
    g = torch.Generator().manual_seed(left)
    for T in (5, 31, 70):
        q, k, v = (torch.randn(2, 3, T, 8, generator=g) for _ in range(3))
        mask = torch.ones(2, T, dtype=torch.bool)
        mask[0, T - T // 3 :] = False  # padding at the end of sample 0
        dense = dense_window_attention(q, k, v, left, right, key_mask=mask)
        banded = banded_window_attention(q, k, v, left, right, block, key_mask=mask)
        assert torch.isfinite(banded).all()
        torch.testing.assert_close(banded, dense, atol=2e-6, rtol=1e-5)
        full = banded_window_attention(q, k, v, left, right, block, key_mask=torch.ones(2, T, dtype=torch.bool))
        torch.testing.assert_close(full, banded_window_attention(q, k, v, left, right, block))


@pytest.mark.parametrize("fusion", ["highway", "cascade", "shared"])
def test_real_frames_ignore_padded_frames(fusion: str) -> None:
    torch.manual_seed(0)
    cfg = AVFlowConfig(face_dim=4, d_model=16, hidden_dim=16, heads=2, depth=2, window_left=4, window_right=3,
                       attn_block=8, fusion=fusion)
    model = AVFlow(cfg).eval()
    for block in model.modules():  # non-zero AdaLN gates, so attention reaches the output
        if hasattr(block, "proj") and block.proj.out_features == 3 * cfg.d_model:
            torch.nn.init.normal_(block.proj.weight, std=0.3)
    T, real = 40, 30
    x, cond, t = torch.randn(1, T, cfg.x_dim), torch.randn(1, T, cfg.cond_dim), torch.tensor([0.4])
    mask = torch.arange(T)[None] < real  # (1, T)
    x2, cond2 = x.clone(), cond.clone()
    x2[:, real:] += 100.0
    cond2[:, real:] -= 50.0
    with torch.no_grad():
        a = model(x, t, cond, key_mask=mask)
        b = model(x2, t, cond2, key_mask=mask)
        c = model(x2, t, cond2)
    torch.testing.assert_close(a[:, :real], b[:, :real], atol=1e-5, rtol=1e-5)
    assert (c[:, :real] - a[:, :real]).abs().max() > 1e-3  # without the mask the padding leaks in
