"""Head-pose VAE (docs/release_format.md §4): raw pose (T, 7) ↔ latent (T, 8), per frame.

Encoder: Linear(7 → 16), one ``nn.TransformerEncoderLayer`` (d 16, 1 head, feed-forward 2048,
dropout 0.1, ReLU, post-norm), then Linear heads for the mean and log-variance (16 → 8).
Decoder: Linear(8 → 16), the same kind of layer, Linear(16 → 7). No positional encoding: the
layer mixes frames without knowing their order, exactly as the release does. The raw pose
[qw qx qy qz tx ty tz] is z-scored with ``config.pose_mean/pose_std`` inside, so callers pass and
receive raw poses. Loss: mean L1 reconstruction + kld_weight · KL (summed over latent dims,
averaged over frames), + optional smoothness of the latent mean over time.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from avflow_cli.models.config import HeadVAEConfig

__all__ = ["HeadVAE", "vae_loss"]  # loading: avflow_cli.models.registry.load_head_vae (the registry builds this class)


def _layers(cfg: HeadVAEConfig) -> nn.ModuleList:
    return nn.ModuleList(
        nn.TransformerEncoderLayer(cfg.hidden, cfg.heads, cfg.ff_dim, cfg.dropout, batch_first=True)
        for _ in range(cfg.layers)
    )


class HeadVAE(nn.Module):
    """The VAE plus its pose normalisation; ``encode_mean`` / ``decode_pose`` work on raw poses."""

    def __init__(self, config: HeadVAEConfig) -> None:
        super().__init__()
        self.config = config.validate()
        self.enc_in = nn.Linear(config.input_dim, config.hidden)
        self.enc_layers = _layers(config)
        self.to_mu = nn.Linear(config.hidden, config.latent_dim)
        self.to_logvar = nn.Linear(config.hidden, config.latent_dim)
        self.dec_in = nn.Linear(config.latent_dim, config.hidden)
        self.dec_layers = _layers(config)
        self.dec_out = nn.Linear(config.hidden, config.input_dim)
        # normalisation lives in config.json, not in the weights (keeps the release's 34 tensors)
        self.register_buffer("pose_mean", torch.tensor(config.pose_mean, dtype=torch.float32), persistent=False)
        self.register_buffer("pose_std", torch.tensor(config.pose_std, dtype=torch.float32), persistent=False)

    # --- the network on normalised poses ------------------------------------------------------
    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, T, 7) normalised → mu, logvar (B, T, 8)."""
        h = self.enc_in(x)  # (B, T, H)
        for layer in self.enc_layers:
            h = layer(h)
        return self.to_mu(h), self.to_logvar(h)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """z (B, T, 8) → normalised pose (B, T, 7)."""
        h = self.dec_in(z)  # (B, T, H)
        for layer in self.dec_layers:
            h = layer(h)
        return self.dec_out(h)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mu, logvar = self.encode(x)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)  # reparameterisation
        return self.decode(z), mu, logvar

    # --- raw-pose API -------------------------------------------------------------------------
    def normalize_pose(self, pose: torch.Tensor) -> torch.Tensor:
        return (pose - self.pose_mean) / self.pose_std

    def denormalize_pose(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.pose_std + self.pose_mean

    @torch.no_grad()
    def encode_mean(self, pose: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
        """Raw pose (T, 7) or (B, T, 7) → latent mean (…, 8), in windows of ``encode_chunk`` frames."""
        x, was_numpy, squeeze = self._as_batch(pose)
        x = self.normalize_pose(x)
        chunk = max(1, self.config.encode_chunk)
        mus = [self.encode(x[:, s : s + chunk])[0] for s in range(0, x.shape[1], chunk)]
        return self._out(torch.cat(mus, dim=1), was_numpy, squeeze)

    @torch.no_grad()
    def decode_pose(self, latent: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
        """Latent (T, 8) or (B, T, 8) → raw pose (…, 7) with unit quaternions."""
        z, was_numpy, squeeze = self._as_batch(latent)
        chunk = max(1, self.config.encode_chunk)
        outs = [self.decode(z[:, s : s + chunk]) for s in range(0, z.shape[1], chunk)]
        pose = self.denormalize_pose(torch.cat(outs, dim=1))  # (B, T, 7)
        quat = pose[..., :4] / pose[..., :4].norm(dim=-1, keepdim=True).clamp_min(1e-8)
        return self._out(torch.cat([quat, pose[..., 4:]], dim=-1), was_numpy, squeeze)

    def _as_batch(self, arr: np.ndarray | torch.Tensor) -> tuple[torch.Tensor, bool, bool]:
        was_numpy = not isinstance(arr, torch.Tensor)
        x = torch.as_tensor(np.asarray(arr, np.float32) if was_numpy else arr).to(self.pose_mean.device, torch.float32)
        squeeze = x.ndim == 2
        return (x[None] if squeeze else x), was_numpy, squeeze

    @staticmethod
    def _out(x: torch.Tensor, was_numpy: bool, squeeze: bool) -> np.ndarray | torch.Tensor:
        x = x[0] if squeeze else x
        return x.cpu().numpy() if was_numpy else x


def vae_loss(
    model: HeadVAE, pose_norm: torch.Tensor, valid: torch.Tensor | None = None
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Reconstruction L1 + KL (+ smoothness) on normalised poses (B, T, 7), valid (B, T)."""
    cfg = model.config
    recon, mu, logvar = model(pose_norm)
    w = torch.ones(pose_norm.shape[:2], device=pose_norm.device) if valid is None else valid.float()  # (B, T)
    n = w.sum().clamp_min(1.0)
    rec = ((recon - pose_norm).abs().mean(-1) * w).sum() / n
    kld = ((-0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(-1)) * w).sum() / n
    total = rec + cfg.kld_weight * kld
    terms = {"recon": rec.detach(), "kld": kld.detach()}
    if cfg.smooth_weight > 0:
        pair = w[:, 1:] * w[:, :-1]  # (B, T-1)
        smooth = ((mu[:, 1:] - mu[:, :-1]).abs().mean(-1) * pair).sum() / pair.sum().clamp_min(1.0)
        total = total + cfg.smooth_weight * smooth
        terms["smooth"] = smooth.detach()
    return total, terms
