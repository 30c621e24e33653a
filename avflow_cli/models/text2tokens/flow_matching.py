"""Conditional flow matching around the U-Net decoder (OT-CFM, Matcha-TTS / docs/release_format.md §5).

Path: y_t = (1 − (1 − σ)t)·z + t·x1, target u = x1 − (1 − σ)·z, z ~ N(0, I); sampling
integrates dy/dt = v(y, t) with Euler from z·temperature at t = 0 to t = 1.
Shapes: B batch, 29 token channels, T frames.
"""

from __future__ import annotations

import torch
from torch import nn

from avflow_cli.models.text2tokens.config import T2TConfig
from avflow_cli.models.text2tokens.decoder import Decoder


class CFM(nn.Module):
    """Flow-matching wrapper; ``estimator`` is the vector-field network (release key name)."""

    def __init__(self, cfg: T2TConfig) -> None:
        super().__init__()
        self.sigma_min = cfg.sigma_min
        self.estimator = Decoder(cfg)

    @torch.no_grad()
    def sample(
        self,
        mu: torch.Tensor,
        mask: torch.Tensor,
        steps: int,
        temperature: float,
        noise: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """mu (B, 29, T), mask (B, 1, T) → sample (B, 29, T) after ``steps`` Euler steps.

        ``noise`` (B, 29, T) fixes the start point; otherwise it is drawn from ``generator``.
        """
        if steps < 1:
            raise ValueError("steps must be >= 1")
        z = noise if noise is not None else torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        y = z * temperature  # (B, 29, T)
        t_span = torch.linspace(0, 1, steps + 1, device=mu.device)
        t, dt = t_span[0], t_span[1] - t_span[0]
        for step in range(1, steps + 1):
            y = y + dt * self.estimator(y, mask, mu, t)  # (B, 29, T)
            t = t + dt
            if step < steps:
                dt = t_span[step + 1] - t
        return y

    def loss(self, x1: torch.Tensor, mask: torch.Tensor, mu: torch.Tensor) -> torch.Tensor:
        """Masked MSE between predicted and target velocity at a random t per item.

        x1, mu (B, 29, T), mask (B, 1, T) → scalar, averaged over valid frames and channels.
        """
        b = mu.shape[0]
        t = torch.rand(b, 1, 1, device=mu.device, dtype=mu.dtype)  # (B, 1, 1)
        z = torch.randn_like(x1)  # (B, 29, T)
        y = (1 - (1 - self.sigma_min) * t) * z + t * x1  # (B, 29, T)
        u = x1 - (1 - self.sigma_min) * z  # (B, 29, T)
        v = self.estimator(y, mask, mu, t.view(b))  # (B, 29, T)
        return ((v - u) ** 2 * mask).sum() / (mask.sum() * u.shape[1])
