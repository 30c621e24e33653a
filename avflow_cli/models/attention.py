"""Windowed self-attention with interleaved RoPE, computed in blocks so cost is linear in T.

Query i sees keys j with ``i - left <= j <= i + right`` (REFERENCE.md §1: the release uses
left 16 / right 8; the paper 7 / 2). Instead of a dense T×T mask, queries are cut into blocks of
``block`` frames; block b attends to the ``block + left + right`` keys that any of its queries
can reach (an ``unfold`` of the padded keys), under a small local mask that also hides padding.
Memory and time grow linearly with T and the result equals the dense masked formulation
(:func:`dense_window_attention`, kept as the reference for tests).

Layout follows the release so its weights load: ``qkv`` output is viewed as (B, T, H, 3·Dh) and
split into q|k|v per head ("head-major"), RoPE rotates interleaved pairs (x[2k], x[2k+1]) by
pos·θ_k with θ_k = base^(−2k/Dh), in fp32, over all head dims; heads merge in (H, Dh) order.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def rope_tables(seq_len: int, head_dim: int, base: float, device: torch.device,
                offset: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of pos·θ_k, each (T, Dh/2) in fp32 (any length: nothing is cached).

    ``offset``: position of the first frame (streaming windows keep the positions they have in
    the whole sequence, so their angles are bit-identical to one pass over it).
    """
    theta = 1.0 / (base ** (torch.arange(0, head_dim, 2, device=device)[: head_dim // 2].float() / head_dim))
    pos = torch.arange(offset, offset + seq_len, device=device, dtype=torch.float32)
    angles = pos[:, None] * theta[None, :]  # (T, Dh/2)
    return torch.cos(angles), torch.sin(angles)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate interleaved pairs of x (B, T, H, Dh) by the angle tables (T, Dh/2); fp32 inside."""
    xf = x.float().reshape(*x.shape[:-1], -1, 2)  # (B, T, H, Dh/2, 2)
    c = cos[None, :, None, :]  # (1, T, 1, Dh/2)
    s = sin[None, :, None, :]
    even, odd = xf[..., 0], xf[..., 1]
    out = torch.stack([even * c - odd * s, odd * c + even * s], dim=-1)  # (B, T, H, Dh/2, 2)
    return out.flatten(3).type_as(x)  # (B, T, H, Dh)


def window_mask(seq_len: int, left: int, right: int, device: torch.device | None = None) -> torch.Tensor:
    """Dense boolean (T, T) mask, True where query i may see key j. For tests and tiny T only."""
    i = torch.arange(seq_len, device=device)[:, None]
    j = torch.arange(seq_len, device=device)[None, :]
    return (j >= i - left) & (j <= i + right)


def dense_window_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, left: int, right: int, key_mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Reference: q, k, v (B, H, T, Dh) → (B, H, T, Dh) with a dense T×T mask (quadratic).

    ``key_mask`` (B, T) bool, True on real frames: real queries do not see padded keys (padded
    queries keep the plain window, so no row is empty).
    """
    mask = window_mask(q.shape[-2], left, right, q.device)  # (T, T)
    if key_mask is not None:
        mask = mask & (key_mask[:, None, None, :] | ~key_mask[:, None, :, None])  # (B, 1, T, T)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)


def _block_mask(n_blocks: int, block: int, left: int, right: int, seq_len: int, device: torch.device) -> torch.Tensor:
    """(nb, L, L+left+right) bool: band of the window, minus keys that fall in padding."""
    span = block + left + right
    qi = torch.arange(block, device=device)[:, None]  # (L, 1)
    kj = torch.arange(span, device=device)[None, :]  # (1, S)
    band = (kj >= qi) & (kj <= qi + left + right)  # (L, S) local offset j - i in [0, left+right]
    key_pos = torch.arange(n_blocks, device=device)[:, None] * block - left + kj  # (nb, S) global key index
    key_ok = (key_pos >= 0) & (key_pos < seq_len)  # (nb, S)
    mask = band[None] & key_ok[:, None, :]  # (nb, L, S)
    # padding queries (dropped afterwards) see every key: no all-masked row, so no NaN in backward
    q_pad = (torch.arange(n_blocks, device=device)[:, None] * block + qi[:, 0][None, :]) >= seq_len  # (nb, L)
    return mask | q_pad[:, :, None]


def banded_window_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, left: int, right: int, block: int = 64,
    key_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Windowed attention in linear memory: q, k, v (B, H, T, Dh) → (B, H, T, Dh).

    Equal to :func:`dense_window_attention` for any T (padding keys are masked, padding queries
    are dropped), with the same optional ``key_mask`` (B, T) bool of real frames.
    """
    B, H, T, D = q.shape
    block = max(1, min(block, T))
    n_blocks = -(-T // block)
    pad_q = n_blocks * block - T
    span = block + left + right
    qb = F.pad(q, (0, 0, 0, pad_q)).view(B, H, n_blocks, block, D)  # (B, H, nb, L, D)
    # keys for block b are global [b·L − left, b·L + L + right): pad left by `left`, right to fit
    pad_right = n_blocks * block + right - T
    kp = F.pad(k, (0, 0, left, pad_right))  # (B, H, left + nb·L + right, D)
    vp = F.pad(v, (0, 0, left, pad_right))
    kb = kp.unfold(2, span, block).transpose(-1, -2)  # (B, H, nb, S, D)
    vb = vp.unfold(2, span, block).transpose(-1, -2)  # (B, H, nb, S, D)
    mask = _block_mask(n_blocks, block, left, right, T, q.device)[None]  # (1, nb, L, S)
    if key_mask is not None:  # padded frames of a window: invisible to real queries
        km = F.pad(key_mask, (left, pad_right), value=False).unfold(1, span, block)  # (B, nb, S)
        qm = F.pad(key_mask, (0, pad_q), value=False).view(B, n_blocks, block)  # (B, nb, L)
        mask = mask & (km[:, :, None, :] | ~qm[:, :, :, None])  # (B, nb, L, S)
        mask = mask[:, None].expand(B, H, n_blocks, block, span).reshape(B * H, n_blocks, block, span)
    # 4-D for the fused SDPA kernels: (B·H) as batch, blocks as "heads"; the mask broadcasts
    out = F.scaled_dot_product_attention(
        qb.reshape(B * H, n_blocks, block, D), kb.reshape(B * H, n_blocks, span, D), vb.reshape(B * H, n_blocks, span, D),
        attn_mask=mask,
    )  # (B·H, nb, L, D)
    return out.reshape(B, H, n_blocks * block, D)[:, :, :T]  # (B, H, T, D)


class WindowedSelfAttention(nn.Module):
    """qkv projection (head-major), RoPE on q and k, banded windowed attention, output projection."""

    def __init__(self, dim: int, heads: int, left: int, right: int, rope_base: float = 1e4, block: int = 64) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} not divisible by heads {heads}")
        self.dim, self.heads, self.head_dim = dim, heads, dim // heads
        self.left, self.right, self.rope_base, self.block = left, right, rope_base, block
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor] | None = None,
                key_mask: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, T, D) → (B, T, D). ``rope`` = precomputed (cos, sin) tables for this T, shared by layers;
        ``key_mask`` (B, T) bool = real frames (padded keys hidden from real queries), None = all real."""
        B, T, _ = x.shape
        qkv = self.qkv(x).view(B, T, self.heads, 3 * self.head_dim)  # (B, T, H, 3·Dh) head-major
        q, k, v = qkv.split(self.head_dim, dim=-1)  # each (B, T, H, Dh)
        cos, sin = rope if rope is not None else rope_tables(T, self.head_dim, self.rope_base, x.device)
        q = apply_rope(q, cos, sin).transpose(1, 2)  # (B, H, T, Dh)
        k = apply_rope(k, cos, sin).transpose(1, 2)  # (B, H, T, Dh)
        v = v.transpose(1, 2)  # (B, H, T, Dh)
        y = banded_window_attention(q, k, v, self.left, self.right, self.block, key_mask)  # (B, H, T, Dh)
        y = y.transpose(1, 2).reshape(B, T, self.dim)  # (B, T, D) heads merged in (H, Dh) order
        return self.out(y)
