"""Head-pose VAE: shapes, state-dict layout of the release, raw-pose round trip after training."""

from __future__ import annotations

import numpy as np
import torch

from avflow_cli.models.config import HeadVAEConfig
from avflow_cli.models.headvae import HeadVAE, vae_loss


def test_release_layout_and_size() -> None:
    vae = HeadVAE(HeadVAEConfig())
    sd = vae.state_dict()
    assert len(sd) == 34  # docs/release_format.md §4
    assert sum(v.numel() for v in sd.values()) == 138_167
    assert sd["enc_layers.0.linear1.weight"].shape == (2048, 16)


def test_round_trip_after_a_short_fit() -> None:
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    t = np.arange(120) / 86.13
    ang = 0.2 * np.sin(2 * np.pi * 0.5 * t)[:, None] + 0.05 * rng.normal(size=(1, 1))
    quat = np.concatenate([np.cos(ang / 2), np.sin(ang / 2), 0 * ang, 0 * ang], 1)
    trans = np.stack([5 * np.sin(t), 3 * np.cos(2 * t), 1000 + 2 * np.sin(3 * t)], 1)
    pose = np.concatenate([quat, trans], 1).astype(np.float32)  # (T, 7)
    cfg = HeadVAEConfig(ff_dim=64, dropout=0.0, pose_mean=pose.mean(0).tolist(), pose_std=(pose.std(0) + 1e-3).tolist())
    vae = HeadVAE(cfg)
    opt = torch.optim.Adam(vae.parameters(), lr=3e-3)
    x = vae.normalize_pose(torch.from_numpy(pose))[None]
    for _ in range(150):
        loss, terms = vae_loss(vae, x)
        opt.zero_grad()
        loss.backward()
        opt.step()
    vae.eval()
    latent = vae.encode_mean(pose)
    assert latent.shape == (120, 8)
    back = vae.decode_pose(latent)
    assert back.shape == (120, 7)
    np.testing.assert_allclose(np.linalg.norm(back[:, :4], axis=1), 1.0, atol=1e-5)
    assert np.abs(back[:, 4:] - pose[:, 4:]).mean() < 0.25 * pose[:, 4:].std(0).mean()
    assert np.abs(back[:, 1] - pose[:, 1]).mean() < 0.3 * pose[:, 1].std()


def test_smoothness_term_is_reported_when_enabled() -> None:
    vae = HeadVAE(HeadVAEConfig(ff_dim=8, smooth_weight=0.5))
    _, terms = vae_loss(vae, torch.randn(2, 10, 7), torch.ones(2, 10, dtype=torch.bool))
    assert set(terms) == {"recon", "kld", "smooth"}
