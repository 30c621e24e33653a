"""Windowed self-attention with interleaved RoPE, computed in blocks so cost is linear in T.

Query i sees keys j with ``i - left <= j <= i + right`` (docs/release_format.md §1: the release uses
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
shared by every layer. The qkv GEMM writes straight into one zero-padded (rows, 3·D) buffer
(row ``left + b·P + t`` = frame t of sample b, P = blocks·block), RoPE rotates its q and k parts
in place in one complex multiply, and query blocks and the overlapping key/value windows are
then strided *views* of that buffer (no copies), with (sample, block) as the SDPA batch and heads
as its heads, so the fused kernel's output is already in (B, T, H·Dh) order for the output
projection. Windows that reach into a neighbour sample's rows are masked, so one SDPA call
covers the whole batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from avflow_cli.models.config import ATTN_BLOCK


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

    # -- the qkv buffer ----------------------------------------------------------------------------
    @property
    def rows(self) -> int:
        """Rows of the shared qkv buffer: ``left`` zeros, B·P frame rows, ``right`` zeros."""
        return self.left + self.batch * self.padded + self.right

    def project_qkv(self, x: torch.Tensor, qkv: nn.Linear) -> torch.Tensor:
        """The qkv projection of x (B, T, D) written into the zero-padded buffer (rows, 3·D).

        Row ``left + b·P + t`` holds frame t of sample b; the ``left`` rows before, the ``right``
        after and the P − T rows after each sample are zero (masked, but finite). Without
        gradients or autocast and with one sample (or T = P) the GEMM writes straight into the
        buffer; otherwise the buffer is a padded copy, so autograd sees ordinary ops and autocast
        keeps its cached low-precision weights (an ``out=`` GEMM would bypass both).
        """
        B, T, _ = x.shape
        P, left = self.padded, self.left
        direct = (B == 1 or P == T) and not torch.compiler.is_compiling() and not (
            torch.is_autocast_enabled(x.device.type)
            or torch.is_grad_enabled() and (x.requires_grad or qkv.weight.requires_grad))
        if not direct:
            return self.pad_rows(qkv(x))  # (rows, 3D)
        buf = torch.empty(self.rows, qkv.out_features, dtype=qkv.weight.dtype, device=x.device)
        buf[:left] = 0
        buf[left + B * T:] = 0
        torch.addmm(qkv.bias, x.reshape(B * T, -1), qkv.weight.t(), out=buf[left: left + B * T])
        return buf

    def pad_rows(self, y: torch.Tensor) -> torch.Tensor:
        """(B, T, W) → the zero-padded (rows, W) layout of :meth:`project_qkv` (differentiable)."""
        B, T, W = y.shape
        if self.padded > T:
            y = F.pad(y, (0, 0, 0, self.padded - T))
        return F.pad(y.reshape(B * self.padded, W), (0, 0, self.left, self.right))

    def rotate_qk_(self, buf: torch.Tensor, heads: int) -> None:
        """RoPE on the q and k parts of the buffer's frame rows, in place (fp32 arithmetic)."""
        B, T, P, Dh, left = self.batch, self.seq_len, self.padded, self.head_dim, self.left
        qk = buf[left: left + B * P].view(B, P, heads, 3, Dh)[:, :T, :, :2]  # (B, T, H, 2, Dh) view
        if torch.compiler.is_compiling():  # real arithmetic: inductor fuses it into one kernel (no complex dtype)
            cos, sin = (c[None, :, None, None, :] for c in self.rope_real)  # (1, T, 1, 1, Dh/2)
            xf = qk.float().unflatten(-1, (Dh // 2, 2))
            even, odd = xf[..., 0], xf[..., 1]
            qk.copy_(torch.stack([even * cos - odd * sin, odd * cos + even * sin], dim=-1).flatten(-2))
            return
        rope = self.rope[:, :, None, :]  # (T, 1, 1, Dh/2) complex
        if buf.dtype == torch.float32 and not _needs_grad(buf):
            pairs = torch.view_as_complex(qk.unflatten(-1, (Dh // 2, 2)))  # (B, T, H, 2, Dh/2) view
            torch.mul(pairs, rope, out=pairs)
            return
        rot = torch.view_as_complex(qk.float().unflatten(-1, (Dh // 2, 2))) * rope
        qk.copy_(torch.view_as_real(rot).flatten(-2))  # fp32 → buffer dtype (differentiable slice copy)

    def attend_buffer(self, buf: torch.Tensor, heads: int) -> torch.Tensor:
        """Banded attention over a (rows, 3·D) qkv buffer → (B, T, H·Dh).

        Query blocks and the overlapping key/value windows are strided views of the buffer
        (no copies); (sample, block) is the SDPA batch, so one call covers the whole batch.
        """
        B, T, P, L, S, Dh, left = self.batch, self.seq_len, self.padded, self.block, self.span, self.head_dim, self.left
        nbat = B * self.n_blocks
        per_head = buf.view(self.rows, heads, 3, Dh)
        qb = buf[left: left + B * P].view(nbat, L, heads, 3, Dh)[..., 0, :].transpose(1, 2)  # (B·nb, H, L, Dh)
        kb = per_head[:, :, 1].unfold(0, S, L).transpose(-1, -2)  # (B·nb, H, S, Dh): overlapping windows
        vb = per_head[:, :, 2].unfold(0, S, L).transpose(-1, -2)
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
    qkv = torch.cat([q, k, v], dim=-1).transpose(1, 2).reshape(B, T, H * 3 * D)  # head-major (H, 3·D) layout
    y = plan.attend_buffer(plan.pad_rows(qkv), H)  # (B, T, H·D)
    return y.reshape(B, T, H, D).transpose(1, 2)  # (B, H, T, D)


class WindowedSelfAttention(nn.Module):
    """qkv projection (head-major), RoPE on q and k, banded windowed attention, output projection."""

    def __init__(self, dim: int, heads: int, left: int, right: int, rope_base: float = 1e4, block: int = ATTN_BLOCK) -> None:
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
        plan = rope if isinstance(rope, AttentionPlan) else self.plan(x, key_mask)
        buf = plan.project_qkv(x, self.qkv)  # (rows, 3D) zero-padded, per head [q | k | v] (head-major)
        plan.rotate_qk_(buf, self.heads)
        y = plan.attend_buffer(buf, self.heads)  # (B, T, D) heads merged in (H, Dh) order
        return self.out(y)
