"""Windowed self-attention with interleaved RoPE, computed in blocks so cost is linear in T.

Query i sees keys j with ``i - left <= j <= i + right`` (REFERENCE.md §1: the release uses
left 16 / right 8; the paper 7 / 2). Instead of a dense T×T mask, queries are cut into blocks of
``block`` frames; block n attends to the ``block + left + right`` keys that any of its queries
can reach, under a small local mask that also hides padding. Memory and time grow linearly with
T and the result equals the dense masked formulation (:func:`dense_window_attention`, kept as
the reference for tests).

Layout follows the release so its weights load: ``qkv`` output is viewed as (B, T, H, 3·Dh) and
split into q|k|v per head ("head-major"), RoPE rotates interleaved pairs (x[2k], x[2k+1]) by
pos·θ_k with θ_k = base^(−2k/Dh), in fp32, over all head dims; heads merge in (H, Dh) order.

Speed (issue 13): everything that depends only on the length is built once per forward in an
:class:`AttentionPlan` (the RoPE table as complex numbers, the additive block mask per dtype) and
shared by every layer. Rotated q and k, and v, are written straight into zero-padded buffers in
the (B, T, H, Dh) layout the qkv GEMM produces: query blocks and the overlapping key windows are
then strided *views* of those buffers (no unfold copies), with (sample, block) as the SDPA batch
and heads as its heads, so the fused kernel's output is already in (B, T, H·Dh) order for the
output projection. Sample b's keys sit at rows ``left + b·P + t`` of one shared key buffer
(P = blocks·block): windows that reach into a neighbour's rows are masked, so one SDPA call
covers the whole batch.
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


class AttentionPlan:
    """Per-forward tables shared by every attention layer of one length (and key mask).

    ``rope``: complex (T, 1, Dh/2) = exp(i·pos·θ_k); masks: additive (B·nb or nb, 1, L, S), 0 where
    query may see key and −inf elsewhere, built per dtype on first use.
    """

    def __init__(self, batch: int, seq_len: int, head_dim: int, base: float, left: int, right: int, block: int,
                 device: torch.device, key_mask: torch.Tensor | None = None, pos_offset: int = 0) -> None:
        self.batch, self.seq_len, self.head_dim = batch, seq_len, head_dim
        self.left, self.right = left, right
        self.block = max(1, min(block, seq_len))
        self.n_blocks = -(-seq_len // self.block)
        self.span = self.block + left + right
        self.padded = self.n_blocks * self.block  # P
        cos, sin = rope_tables(seq_len, head_dim, base, device, pos_offset)  # positions pos_offset + 0..T-1
        self.rope = torch.complex(cos, sin)[:, None, :]  # (T, 1, Dh/2) complex64
        self.rope_real = (cos, sin)
        self.key_mask = key_mask
        self._bool = self._bool_mask(device)  # (B·nb or nb, 1, L, S)
        self._additive: dict[torch.dtype, torch.Tensor] = {}

    def _bool_mask(self, device: torch.device) -> torch.Tensor:
        B, T, L, S, nb = self.batch, self.seq_len, self.block, self.span, self.n_blocks
        qi = torch.arange(L, device=device)[:, None]  # (L, 1)
        kj = torch.arange(S, device=device)[None, :]  # (1, S)
        band = (kj >= qi) & (kj <= qi + self.left + self.right)  # (L, S): j − i in [−left, right]
        key_pos = torch.arange(nb, device=device)[:, None] * L - self.left + kj  # (nb, S) position in the sample
        key_ok = (key_pos >= 0) & (key_pos < T)  # (nb, S)
        q_pos = torch.arange(nb, device=device)[:, None] * L + qi[:, 0][None, :]  # (nb, L)
        q_pad = q_pos >= T  # (nb, L)
        if self.key_mask is None:
            mask = band[None] & key_ok[:, None, :]  # (nb, L, S)
            # padding queries (dropped afterwards) see every key: no all-masked row, no NaN in backward
            mask = mask | q_pad[:, :, None]
            return mask[:, None] if B == 1 else mask[:, None].repeat(B, 1, 1, 1)  # (B·nb, 1, L, S)
        km = self.key_mask.to(device=device, dtype=torch.bool)  # (B, T) real frames
        k_real = F.pad(km, (self.left, self.padded + self.right - T), value=False)  # (B, left + P + right)
        k_real = k_real.unfold(1, S, L)  # (B, nb, S)
        q_real = F.pad(km, (0, self.padded - T), value=False).view(B, nb, L)  # (B, nb, L)
        mask = band[None, None] & key_ok[None, :, None, :]  # (1, nb, L, S)
        mask = mask & (k_real[:, :, None, :] | ~q_real[:, :, :, None])  # (B, nb, L, S)
        mask = mask | q_pad[None, :, :, None]
        return mask.reshape(B * nb, 1, L, S)

    def mask(self, dtype: torch.dtype) -> torch.Tensor:
        """The block mask as an additive float mask in ``dtype`` (SDPA converts bools on every call)."""
        if dtype not in self._additive:
            zero = torch.zeros((), dtype=dtype, device=self._bool.device)
            self._additive[dtype] = torch.where(self._bool, zero, torch.tensor(float("-inf"), dtype=dtype,
                                                                              device=self._bool.device))
        return self._additive[dtype]

    # -- buffers ---------------------------------------------------------------------------------
    def buffers(self, like: torch.Tensor, heads: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Empty q (B, P, H, Dh) and k, v (left + B·P + right, H, Dh) buffers with their padding zeroed."""
        B, T, P, Dh = self.batch, self.seq_len, self.padded, self.head_dim
        opts = dict(dtype=like.dtype, device=like.device)
        qbuf = torch.empty(B, P, heads, Dh, **opts)
        if P > T:
            qbuf[:, T:] = 0
        rows = self.left + B * P + self.right
        kbuf, vbuf = torch.empty(rows, heads, Dh, **opts), torch.empty(rows, heads, Dh, **opts)
        for buf in (kbuf, vbuf):
            buf[: self.left] = 0
            buf[self.left + B * P:] = 0
            if P > T:
                self.real_rows(buf)[:, T:] = 0  # gaps between samples: masked, but must be finite
        return qbuf, kbuf, vbuf

    def real_rows(self, kv: torch.Tensor) -> torch.Tensor:
        """(B, P, H, Dh) view of a key/value buffer: row t of sample b."""
        B, P = self.batch, self.padded
        return kv[self.left: self.left + B * P].view(B, P, *kv.shape[1:])

    def rotate_into(self, dst: torch.Tensor, src: torch.Tensor) -> None:
        """dst[...] = RoPE(src); src, dst (B, T, H, Dh) (dst may be a strided buffer view); fp32 inside."""
        B, T, H, Dh = src.shape
        if torch.compiler.is_compiling():  # real arithmetic: inductor fuses it into one kernel (no complex dtype)
            cos, sin = self.rope_real  # (T, Dh/2) each
            xf = src.float().reshape(B, T, H, Dh // 2, 2)
            c, s_ = cos[None, :, None, :], sin[None, :, None, :]
            even, odd = xf[..., 0], xf[..., 1]
            dst.copy_(torch.stack([even * c - odd * s_, odd * c + even * s_], dim=-1).flatten(3))
            return
        if src.dtype == torch.float32 and dst.dtype == torch.float32 and not _needs_grad(src):
            out = torch.view_as_complex(dst.view(B, T, H, Dh // 2, 2))
            torch.mul(torch.view_as_complex(src.view(B, T, H, Dh // 2, 2)), self.rope, out=out)
            return
        rot = torch.view_as_complex(src.float().reshape(B, T, H, Dh // 2, 2)) * self.rope  # (B, T, H, Dh/2)
        dst.copy_(torch.view_as_real(rot).flatten(3))  # fp32 → dst dtype (differentiable slice copy)

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int, rotate: bool) -> torch.Tensor:
        """q, k, v (B, T, H, Dh) (any strides, last dim contiguous) → (B, T, H·Dh) attention output."""
        B, T, P, L, S, Dh = self.batch, self.seq_len, self.padded, self.block, self.span, self.head_dim
        qbuf, kbuf, vbuf = self.buffers(q, heads)
        if rotate:
            self.rotate_into(qbuf[:, :T], q)
            self.rotate_into(self.real_rows(kbuf)[:, :T], k)
        else:
            qbuf[:, :T] = q
            self.real_rows(kbuf)[:, :T] = k
        self.real_rows(vbuf)[:, :T] = v
        nbat = B * self.n_blocks
        qb = qbuf.view(nbat, L, heads, Dh).transpose(1, 2)  # (B·nb, H, L, Dh) view
        kb = kbuf.unfold(0, S, L).transpose(-1, -2)  # (B·nb, H, S, Dh): overlapping windows, a view
        vb = vbuf.unfold(0, S, L).transpose(-1, -2)
        out = F.scaled_dot_product_attention(qb, kb, vb, attn_mask=self.mask(qb.dtype))  # (B·nb, H, L, Dh)
        y = out.transpose(1, 2).reshape(B, P, heads * Dh)  # free when the kernel wrote (B·nb, L, H, Dh)
        return y if P == T else y[:, :T]  # (B, T, H·Dh)


def _needs_grad(t: torch.Tensor) -> bool:
    return torch.is_grad_enabled() and t.requires_grad


def banded_window_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, left: int, right: int, block: int = 64,
    key_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Windowed attention in linear memory: q, k, v (B, H, T, Dh) → (B, H, T, Dh) (no RoPE here).

    Equal to :func:`dense_window_attention` for any T (padding keys are masked, padding queries
    are dropped), with the same optional ``key_mask`` (B, T) bool of real frames.
    """
    B, H, T, D = q.shape
    plan = AttentionPlan(B, T, D, 1e4, left, right, block, q.device, key_mask)
    y = plan.attend(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), H, rotate=False)  # (B, T, H·D)
    return y.reshape(B, T, H, D).transpose(1, 2)  # (B, H, T, D)


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

    def plan(self, x: torch.Tensor, key_mask: torch.Tensor | None = None) -> AttentionPlan:
        """The per-forward tables for input x (B, T, D); build once and pass to every layer."""
        return AttentionPlan(x.shape[0], x.shape[1], self.head_dim, self.rope_base, self.left, self.right, self.block,
                             x.device, key_mask)

    def forward(self, x: torch.Tensor, rope: AttentionPlan | tuple[torch.Tensor, torch.Tensor] | None = None,
                key_mask: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, T, D) → (B, T, D). ``rope``: the forward's :class:`AttentionPlan` (shared by layers;
        built here when None or an old (cos, sin) pair); ``key_mask`` (B, T) bool = real frames
        (padded keys hidden from real queries), None = all real (ignored when a plan is given: the
        plan carries its own)."""
        B, T, _ = x.shape
        plan = rope if isinstance(rope, AttentionPlan) else self.plan(x, key_mask)
        qkv = self.qkv(x).view(B, T, self.heads, 3 * self.head_dim)  # (B, T, H, 3·Dh) head-major
        q, k, v = qkv.split(self.head_dim, dim=-1)  # each (B, T, H, Dh), strided views
        y = plan.attend(q, k, v, self.heads, rotate=True)  # (B, T, D) heads merged in (H, Dh) order
        return self.out(y)
