"""Duration predictor: two conv/ReLU/LayerNorm blocks → one log-duration per symbol.

Trained against the log of the durations that monotonic alignment search assigns
(``alignment.py``); at inference ``ceil(exp(logw))`` frames are given to each symbol.
"""

from __future__ import annotations

import torch
from torch import nn

LAYER_NORM_EPS = 1e-4  # the release's channel LayerNorm epsilon


class ChannelLayerNorm(nn.Module):
    """LayerNorm over the channel axis of (B, C, N) tensors, with ``gamma``/``beta`` as in the release."""

    def __init__(self, channels: int, eps: float = LAYER_NORM_EPS) -> None:
        super().__init__()
        self.eps = eps
        self.gamma = nn.Parameter(torch.ones(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(1, keepdim=True)  # (B, 1, N)
        var = ((x - mean) ** 2).mean(1, keepdim=True)  # (B, 1, N)
        x = (x - mean) * torch.rsqrt(var + self.eps)  # (B, C, N)
        return x * self.gamma[None, :, None] + self.beta[None, :, None]


class DurationPredictor(nn.Module):
    """Conv k3 → ReLU → LN → dropout, twice, then a 1×1 conv to one log-duration per symbol."""

    def __init__(self, in_channels: int, filter_channels: int, kernel_size: int, p_dropout: float) -> None:
        super().__init__()
        pad = kernel_size // 2
        self.drop = nn.Dropout(p_dropout)
        self.conv_1 = nn.Conv1d(in_channels, filter_channels, kernel_size, padding=pad)
        self.norm_1 = ChannelLayerNorm(filter_channels)
        self.conv_2 = nn.Conv1d(filter_channels, filter_channels, kernel_size, padding=pad)
        self.norm_2 = ChannelLayerNorm(filter_channels)
        self.proj = nn.Conv1d(filter_channels, 1, 1)

    def forward(self, x: torch.Tensor, x_mask: torch.Tensor) -> torch.Tensor:
        """x (B, C, N), x_mask (B, 1, N) → logw (B, 1, N), zero on padding."""
        h = self.drop(self.norm_1(torch.relu(self.conv_1(x * x_mask))))  # (B, F, N)
        h = self.drop(self.norm_2(torch.relu(self.conv_2(h * x_mask))))  # (B, F, N)
        return self.proj(h * x_mask) * x_mask  # (B, 1, N)
