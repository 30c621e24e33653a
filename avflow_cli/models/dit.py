"""The DiT pieces of AV-Flow: flow-time embedding, AdaLN-Zero modulation and the windowed block.

Exactly as docs/release_format.md §1 records the authors' network, so their weights load:
- time embedding: 64 = D/8 frequencies f_k = exp(−k·ln(10⁴)/(D/8 − 1)) of t ∈ [0, 1] as is,
  [sin | cos] → Linear(D/4 → D) → exact GELU → Linear(D → D), shared by every block. With t as
  is only the ~20 lowest-period features vary over the flow; ``time_scale`` (config) multiplies
  t first (1000 as in DiT for our presets; 1 for the release, whose weights expect t as is);
- each sub-layer (attention, MLP) has its own AdaLN-Zero: Linear(D → 3D) on the time embedding
  (no SiLU), split (alpha, beta, gamma); ``x + alpha · F(LN(x)·(1 + gamma) + beta)`` with a
  LayerNorm without affine, eps 1e-6; alpha's weight rows and the whole bias start at zero, so a
  fresh block is the identity;
- MLP: Linear(D → hidden), exact GELU, Linear(hidden → D).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from avflow_cli.models.attention import WindowedSelfAttention

LN_EPS = 1e-6
TIME_MAX_PERIOD = 10_000.0


class TimeEmbedding(nn.Module):
    """Flow time t (B,) in [0, 1] → (B, D); the Fourier features see ``scale``·t."""

    def __init__(self, dim: int, scale: float = 1.0) -> None:
        super().__init__()
        self.scale = float(scale)
        self.n_freq = dim // 8
        self.fc1 = nn.Linear(dim // 4, dim)
        self.fc2 = nn.Linear(dim, dim)

    def features(self, t: torch.Tensor) -> torch.Tensor:
        """[sin | cos] Fourier features (B, D/4) of scale·t."""
        k = torch.arange(self.n_freq, device=t.device)
        freqs = torch.exp(k * (-math.log(TIME_MAX_PERIOD) / (self.n_freq - 1)))  # (D/8,)
        arg = (t.float() * self.scale)[:, None] * freqs[None, :]  # (B, D/8)
        return torch.cat([torch.sin(arg), torch.cos(arg)], dim=-1)  # (B, D/4)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        feats = self.features(t)  # (B, D/4)
        return self.fc2(F.gelu(self.fc1(feats.to(self.fc1.weight.dtype))))  # (B, D)


class AdaLNZero(nn.Module):
    """Time embedding (B, D) → (alpha, beta, gamma), each (B, 1, D); alpha starts at zero."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim
        self.proj = nn.Linear(dim, 3 * dim)
        with torch.no_grad():
            self.proj.weight[:dim].zero_()
            self.proj.bias.zero_()

    def forward(self, temb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        alpha, beta, gamma = self.proj(temb)[:, None, :].split(self.dim, dim=-1)  # 3 × (B, 1, D)
        return alpha, beta, gamma


class MLP(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))  # (B, T, D), exact (erf) GELU


class DiTBlock(nn.Module):
    """Windowed attention and MLP, each behind its own AdaLN-Zero gate: (B, T, D) → (B, T, D)."""

    def __init__(self, dim: int, hidden: int, heads: int, left: int, right: int, rope_base: float, block: int) -> None:
        super().__init__()
        self.attn_mod = AdaLNZero(dim)
        self.attn = WindowedSelfAttention(dim, heads, left, right, rope_base, block)
        self.mlp_mod = AdaLNZero(dim)
        self.mlp = MLP(dim, hidden)

    def forward(self, x: torch.Tensor, temb: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor] | None = None,
                key_mask: torch.Tensor | None = None) -> torch.Tensor:
        # one pass each for the modulation and the gated residual (speed, issue 13)
        alpha, beta, gamma = self.attn_mod(temb)  # (B, 1, D) each
        x = torch.addcmul(x, self.attn(modulated_norm(x, beta, gamma), rope, key_mask), alpha)  # (B, T, D)
        alpha, beta, gamma = self.mlp_mod(temb)
        return torch.addcmul(x, self.mlp(modulated_norm(x, beta, gamma)), alpha)  # (B, T, D)


def modulated_norm(x: torch.Tensor, beta: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
    """LN(x)·(1 + gamma) + beta for x (B, T, D), beta/gamma (B, 1, D).

    With one sample the modulation is a per-feature affine, so LayerNorm's own weight/bias do
    it in the same pass (sampling); with several, one extra fused pass (addcmul).
    """
    if x.shape[0] == 1:
        return F.layer_norm(x, (x.shape[-1],), weight=(1 + gamma).reshape(-1), bias=beta.reshape(-1), eps=LN_EPS)
    return torch.addcmul(beta, F.layer_norm(x, (x.shape[-1],), eps=LN_EPS), 1 + gamma)
