"""Text encoder: symbol embedding → conv prenet → post-norm transformer with partial RoPE → prior mean.

Follows docs/release_format.md §5 (Glow-TTS/Matcha lineage). Tensors are channels-first as in the
release: B batch, C channels, N symbols (text positions). Attribute names equal the release's
so its state dict loads unchanged.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from avflow_cli.models.text2tokens.config import T2TConfig
from avflow_cli.models.text2tokens.duration_predictor import ChannelLayerNorm, DurationPredictor

ROPE_BASE = 10_000.0
MASK_FILL = -1e4  # the release fills masked attention scores with this, not -inf


def sequence_mask(lengths: torch.Tensor, max_len: int | None = None) -> torch.Tensor:
    """(B,) lengths → (B, max_len) bool, True on valid positions."""
    max_len = int(lengths.max()) if max_len is None else max_len
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]


class ConvReluNorm(nn.Module):
    """Prenet: ``layers`` × [conv, channel LayerNorm, ReLU, dropout], zero-initialised residual projection."""

    def __init__(self, channels: int, kernel_size: int, n_layers: int, p_dropout: float) -> None:
        super().__init__()
        self.conv_layers = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel_size, padding=kernel_size // 2) for _ in range(n_layers)
        )
        self.norm_layers = nn.ModuleList(ChannelLayerNorm(channels) for _ in range(n_layers))
        self.relu_drop = nn.Sequential(nn.ReLU(), nn.Dropout(p_dropout))
        self.proj = nn.Conv1d(channels, channels, 1)
        nn.init.zeros_(self.proj.weight)  # starts as identity: the prenet only adds a learnt residual
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: torch.Tensor, x_mask: torch.Tensor) -> torch.Tensor:
        h = x  # (B, C, N)
        for conv, norm in zip(self.conv_layers, self.norm_layers, strict=True):
            h = self.relu_drop(norm(conv(h * x_mask)))  # (B, C, N)
        return (x + self.proj(h)) * x_mask  # (B, C, N)


class PartialRotaryEmbedding(nn.Module):
    """Rotate-half RoPE on the first ``dim`` features of each head (the release rotates half of them)."""

    def __init__(self, dim: int, base: float = ROPE_BASE) -> None:
        super().__init__()
        self.dim = dim
        self.base = base

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """shape: (B, H, N, Dh) → (B, H, N, Dh)."""
        n = x.shape[2]
        inv_freq = 1.0 / (self.base ** (torch.arange(0, self.dim, 2, device=x.device).float() / self.dim))
        angles = torch.arange(n, device=x.device).float()[:, None] * inv_freq[None, :]  # (N, dim/2)
        angles = torch.cat([angles, angles], dim=-1)  # (N, dim)
        rot, keep = x[..., : self.dim], x[..., self.dim :]
        half = self.dim // 2
        rotated = torch.cat([-rot[..., half:], rot[..., :half]], dim=-1)  # (B, H, N, dim)
        rot = rot * angles.cos() + rotated * angles.sin()
        return torch.cat([rot, keep], dim=-1)


class MultiHeadAttention(nn.Module):
    """Self-attention with 1×1-conv projections and RoPE on half of each head's dims."""

    def __init__(self, channels: int, n_heads: int, p_dropout: float) -> None:
        super().__init__()
        if channels % n_heads:
            raise ValueError("channels must be divisible by n_heads")
        self.n_heads = n_heads
        self.k_channels = channels // n_heads
        self.conv_q = nn.Conv1d(channels, channels, 1)
        self.conv_k = nn.Conv1d(channels, channels, 1)
        self.conv_v = nn.Conv1d(channels, channels, 1)
        self.conv_o = nn.Conv1d(channels, channels, 1)
        self.query_rotary_pe = PartialRotaryEmbedding(self.k_channels // 2)
        self.key_rotary_pe = PartialRotaryEmbedding(self.k_channels // 2)
        self.drop = nn.Dropout(p_dropout)
        for conv in (self.conv_q, self.conv_k, self.conv_v):
            nn.init.xavier_uniform_(conv.weight)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        b, _, n = x.shape
        return x.view(b, self.n_heads, self.k_channels, n).transpose(2, 3)  # (B, H, N, Dh)

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor) -> torch.Tensor:
        """x (B, C, N), attn_mask (B, 1, N, N) → (B, C, N)."""
        q = self.query_rotary_pe(self._heads(self.conv_q(x)))  # (B, H, N, Dh)
        k = self.key_rotary_pe(self._heads(self.conv_k(x)))  # (B, H, N, Dh)
        v = self._heads(self.conv_v(x))  # (B, H, N, Dh)
        scores = q @ k.transpose(-2, -1) / math.sqrt(self.k_channels)  # (B, H, N, N)
        scores = scores.masked_fill(attn_mask == 0, MASK_FILL)
        p = self.drop(torch.softmax(scores, dim=-1))  # (B, H, N, N)
        out = (p @ v).transpose(2, 3).reshape(x.shape)  # (B, C, N)
        return self.conv_o(out)


class FFN(nn.Module):
    """Two masked convolutions with ReLU between (kernel 3 in the release)."""

    def __init__(self, channels: int, filter_channels: int, kernel_size: int, p_dropout: float) -> None:
        super().__init__()
        self.conv_1 = nn.Conv1d(channels, filter_channels, kernel_size, padding=kernel_size // 2)
        self.conv_2 = nn.Conv1d(filter_channels, channels, kernel_size, padding=kernel_size // 2)
        self.drop = nn.Dropout(p_dropout)

    def forward(self, x: torch.Tensor, x_mask: torch.Tensor) -> torch.Tensor:
        h = self.drop(torch.relu(self.conv_1(x * x_mask)))  # (B, F, N)
        return self.conv_2(h * x_mask) * x_mask  # (B, C, N)


class Encoder(nn.Module):
    """Post-norm transformer: x = LN(x + attn(x)); x = LN(x + ffn(x)), per layer."""

    def __init__(self, cfg: T2TConfig) -> None:
        super().__init__()
        c = cfg.n_channels
        self.drop = nn.Dropout(cfg.p_dropout)
        self.attn_layers = nn.ModuleList(MultiHeadAttention(c, cfg.n_heads, cfg.p_dropout) for _ in range(cfg.n_layers))
        self.norm_layers_1 = nn.ModuleList(ChannelLayerNorm(c) for _ in range(cfg.n_layers))
        self.ffn_layers = nn.ModuleList(
            FFN(c, cfg.filter_channels, cfg.kernel_size, cfg.p_dropout) for _ in range(cfg.n_layers)
        )
        self.norm_layers_2 = nn.ModuleList(ChannelLayerNorm(c) for _ in range(cfg.n_layers))

    def forward(self, x: torch.Tensor, x_mask: torch.Tensor) -> torch.Tensor:
        attn_mask = x_mask.unsqueeze(2) * x_mask.unsqueeze(-1)  # (B, 1, N, N)
        for attn, norm1, ffn, norm2 in zip(
            self.attn_layers, self.norm_layers_1, self.ffn_layers, self.norm_layers_2, strict=True
        ):
            x = x * x_mask
            x = norm1(x + self.drop(attn(x, attn_mask)))  # (B, C, N)
            x = norm2(x + self.drop(ffn(x, x_mask)))  # (B, C, N)
        return x * x_mask


class TextEncoder(nn.Module):
    """Symbol ids → prior means ``mu`` (29-d per symbol) and log-durations ``logw``."""

    def __init__(self, cfg: T2TConfig) -> None:
        super().__init__()
        self.n_channels = cfg.n_channels
        self.emb = nn.Embedding(cfg.n_vocab, cfg.n_channels)
        nn.init.normal_(self.emb.weight, 0.0, cfg.n_channels**-0.5)
        self.prenet = (
            ConvReluNorm(cfg.n_channels, cfg.prenet_kernel, cfg.prenet_layers, cfg.prenet_dropout)
            if cfg.prenet
            else None
        )
        self.encoder = Encoder(cfg)
        self.proj_m = nn.Conv1d(cfg.n_channels, cfg.n_feats, 1)
        self.proj_w = DurationPredictor(cfg.n_channels, cfg.filter_channels_dp, cfg.kernel_size_dp, cfg.p_dropout_dp)

    def forward(
        self, x: torch.Tensor, x_lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x (B, N) ids, x_lengths (B,) → mu (B, 29, N), logw (B, 1, N), x_mask (B, 1, N)."""
        h = self.emb(x) * math.sqrt(self.n_channels)  # (B, N, C)
        h = h.transpose(1, 2)  # (B, C, N)
        x_mask = sequence_mask(x_lengths, h.shape[2]).unsqueeze(1).to(h.dtype)  # (B, 1, N)
        if self.prenet is not None:
            h = self.prenet(h, x_mask)  # (B, C, N)
        h = self.encoder(h, x_mask)  # (B, C, N)
        mu = self.proj_m(h) * x_mask  # (B, 29, N)
        logw = self.proj_w(h.detach(), x_mask)  # (B, 1, N): durations don't train the encoder
        return mu, logw, x_mask
