"""The decoder's transformer block: pre-norm self-attention and a SnakeBeta feed-forward.

Same structure and parameter names as diffusers' ``BasicTransformerBlock`` as the release
configures it (no cross-attention, no time conditioning, q/k/v without bias), written here so
avflow does not depend on diffusers. Tensors are (B, T, D): B batch, T frames, D channels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

SNAKE_EPS = 1e-9  # guards 1 / beta, as in the release


class SnakeBeta(nn.Module):
    """Linear, then x + 1/e^β · sin²(e^α · x) per channel (α, β trained in log scale, start at 0)."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.proj = nn.Linear(in_features, out_features)
        self.alpha = nn.Parameter(torch.zeros(out_features))
        self.beta = nn.Parameter(torch.zeros(out_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.proj(x)  # (B, T, out)
        alpha, beta = self.alpha.exp(), self.beta.exp()
        return x + (1.0 / (beta + SNAKE_EPS)) * torch.sin(x * alpha) ** 2


class FeedForward(nn.Module):
    """SnakeBeta(dim → mult·dim) → dropout → Linear(mult·dim → dim); ``net`` indices match the release."""

    def __init__(self, dim: int, dropout: float, mult: int = 4) -> None:
        super().__init__()
        self.net = nn.ModuleList([SnakeBeta(dim, dim * mult), nn.Dropout(dropout), nn.Linear(dim * mult, dim)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.net:
            x = layer(x)
        return x


class Attention(nn.Module):
    """Multi-head self-attention with bias-free q/k/v and a biased output projection."""

    def __init__(self, dim: int, heads: int, dim_head: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        inner = heads * dim_head
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_k = nn.Linear(dim, inner, bias=False)
        self.to_v = nn.Linear(dim, inner, bias=False)
        self.to_out = nn.ModuleList([nn.Linear(inner, dim), nn.Dropout(dropout)])

    def forward(self, x: torch.Tensor, mask: torch.Tensor, additive_mask: bool) -> torch.Tensor:
        """x (B, T, D), mask (B, T) of 0/1 → (B, T, D).

        ``additive_mask`` reproduces the release: the 0/1 mask is *added* to the scores (the
        float-mask convention of ``scaled_dot_product_attention``), so padding is not masked.
        """
        b, t, _ = x.shape
        q, k, v = (proj(x).view(b, t, self.heads, -1).transpose(1, 2) for proj in (self.to_q, self.to_k, self.to_v))
        if additive_mask:
            bias = mask.to(q.dtype)[:, None, None, :]  # (B, 1, 1, T)
        else:
            bias = mask.bool()[:, None, None, :]  # (B, 1, 1, T): True = may attend
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)  # (B, H, T, Dh)
        out = out.transpose(1, 2).reshape(b, t, -1)  # (B, T, H*Dh)
        return self.to_out[1](self.to_out[0](out))  # (B, T, D)


class BasicTransformerBlock(nn.Module):
    """x += attn(LN(x)); x += ff(LN(x)) (``norm1``/``attn1``/``norm3``/``ff`` as in diffusers)."""

    def __init__(self, dim: int, num_heads: int, head_dim: int, dropout: float, additive_mask: bool) -> None:
        super().__init__()
        self.additive_mask = additive_mask
        self.norm1 = nn.LayerNorm(dim)
        self.attn1 = Attention(dim, num_heads, head_dim, dropout)
        self.norm3 = nn.LayerNorm(dim)
        self.ff = FeedForward(dim, dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x (B, T, D), mask (B, T) → (B, T, D)."""
        x = x + self.attn1(self.norm1(x), mask, self.additive_mask)  # (B, T, D)
        return x + self.ff(self.norm3(x))  # (B, T, D)
