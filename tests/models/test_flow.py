"""OT-CFM path, masked per-stream L1 and the Euler sampler."""

from __future__ import annotations

import torch

from avflow_cli.models.avflow import AVFlow
from avflow_cli.models.config import AVFlowConfig
from avflow_cli.models.flow import LossWeights, euler_sample, flow_loss, interpolate, masked_l1


def test_interpolation_endpoints_and_target() -> None:
    x0, x1 = torch.randn(2, 5, 3), torch.randn(2, 5, 3)
    xt, u = interpolate(x0, x1, torch.tensor([0.0, 1.0]), 1e-6)
    torch.testing.assert_close(xt[0], x0[0])
    torch.testing.assert_close(xt[1], x1[1] + 1e-6 * x0[1])
    torch.testing.assert_close(u, x1 - (1 - 1e-6) * x0)


def test_masked_l1_ignores_invalid_frames() -> None:
    pred, target = torch.zeros(1, 4, 2), torch.ones(1, 4, 2)
    pred[0, 3] = 100.0  # garbage on an invalid frame
    valid = torch.tensor([[True, True, True, False]])
    assert masked_l1(pred, target, valid).item() == 1.0
    assert masked_l1(pred, target, torch.zeros(1, 4, dtype=torch.bool)).item() == 0.0


def test_flow_loss_masking_and_weights() -> None:
    cfg = AVFlowConfig(face_dim=4, d_model=16, hidden_dim=16, heads=2, depth=1)

    class Fixed(torch.nn.Module):  # predicts zero velocity: loss = mean |target| per stream
        config = cfg

        def forward(self, x, t, cond, key_mask=None):  # noqa: ANN001, ANN201
            return torch.zeros_like(x)

    x1 = torch.zeros(1, 6, cfg.x_dim)
    x1[0, :, -80:] = 2.0  # mel
    x1[0, 5] = 1000.0  # a padded frame must not count
    valid = torch.tensor([[True] * 5 + [False]])
    gen = torch.Generator().manual_seed(0)
    total, terms = flow_loss(Fixed(), cfg, x1, torch.zeros(1, 6, 29), valid, LossWeights(3, 1, 0.2), generator=gen,
                             frame_mask=valid)
    assert terms["mel"].item() < 10  # the 1000s on frame 5 are excluded
    expect = 3 * terms["mel"] + terms["face"] + 0.2 * terms["head"]
    torch.testing.assert_close(total, expect)


def test_euler_sampler_integrates_constant_velocity_any_length() -> None:
    class Const(torch.nn.Module):
        def forward(self, x, t, cond):  # noqa: ANN001, ANN201
            return torch.ones_like(x) * 2.0

    x0 = torch.zeros(1, 7, 3)
    torch.testing.assert_close(euler_sample(Const(), x0, torch.zeros(1, 7, 1), 8), torch.full((1, 7, 3), 2.0))
    model = AVFlow(AVFlowConfig(face_dim=4, d_model=16, hidden_dim=16, heads=2, depth=1)).eval()
    for T in (3, 130):
        out = euler_sample(model, torch.randn(1, T, model.config.x_dim), torch.randn(1, T, 29), 2)
        assert out.shape == (1, T, model.config.x_dim)


def test_mel_loss_counts_untracked_frames_but_not_padding() -> None:
    """Speech is supervised on every real frame; face/head only where tracked; padding nowhere."""
    cfg = AVFlowConfig(face_dim=4, d_model=16, hidden_dim=16, heads=2, depth=1)

    class Zero(torch.nn.Module):
        config = cfg

        def forward(self, x, t, cond, key_mask=None):  # noqa: ANN001, ANN201
            return torch.zeros_like(x)

    x1 = torch.zeros(1, 6, cfg.x_dim)
    x1[0, :, -80:] = 2.0
    x1[0, 3, -80:] = 5.0  # untracked face, real speech: must count for the mel
    x1[0, 3, :4] = 1000.0  # its face target is meaningless: must not count
    x1[0, 5] = 1000.0  # padding: counts for nothing
    valid = torch.tensor([[True, True, True, False, True, False]])
    frame_mask = torch.tensor([[True] * 5 + [False]])
    x0, t = torch.zeros(1, 6, cfg.x_dim), torch.ones(1)  # target velocity = x1
    _, terms = flow_loss(Zero(), cfg, x1, torch.zeros(1, 6, 29), valid, LossWeights(), x0=x0, t=t,
                         frame_mask=frame_mask)
    torch.testing.assert_close(terms["mel"], torch.tensor((4 * 2.0 + 5.0) / 5))
    assert terms["face"].item() == 0.0
