"""Training losses of text-to-tokens besides flow matching (ours; the release ships none).

Following Glow-TTS / Matcha-TTS: the encoder's per-symbol means form a unit-variance Gaussian
prior over the (normalised) token frames aligned to them, and the duration predictor regresses
the log of the durations that monotonic alignment search assigns.
Shapes: B batch, N symbols, T frames, D = 29 token channels.
"""

from __future__ import annotations

import math

import torch

LOG_2PI = math.log(2 * math.pi)
DURATION_EPS = 1e-8  # log(eps + d) keeps padded symbols (d = 0) finite


def gaussian_log_prior(mu_x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """log N(y_t; mu_i, I) for every symbol i and frame t: (B, D, N), (B, D, T) → (B, N, T).

    Expanded as −½‖y‖² + μ·y − ½‖μ‖² − ½·D·log 2π so it costs two matmuls, not a (B, N, T, D) tensor.
    """
    d = mu_x.shape[1]
    y_sq = -0.5 * (y**2).sum(1, keepdim=True)  # (B, 1, T)
    cross = mu_x.transpose(1, 2) @ y  # (B, N, T)
    mu_sq = -0.5 * (mu_x**2).sum(1).unsqueeze(-1)  # (B, N, 1)
    return y_sq + cross + mu_sq - 0.5 * d * LOG_2PI


def log_durations(path: torch.Tensor, x_mask: torch.Tensor) -> torch.Tensor:
    """Hard alignment (B, N, T) → target log-durations (B, 1, N), zero on padding."""
    return torch.log(DURATION_EPS + path.sum(-1)).unsqueeze(1) * x_mask


def duration_loss(logw: torch.Tensor, logw_target: torch.Tensor, x_lengths: torch.Tensor) -> torch.Tensor:
    """Summed squared error of log-durations per real symbol: (B, 1, N) ×2, (B,) → scalar."""
    return ((logw - logw_target) ** 2).sum() / x_lengths.sum()


def prior_loss(y: torch.Tensor, mu_y: torch.Tensor, y_mask: torch.Tensor) -> torch.Tensor:
    """Negative log-likelihood of frames under N(mu_y, I) per valid frame and channel.

    y, mu_y (B, D, T), y_mask (B, 1, T) → scalar.
    """
    nll = 0.5 * ((y - mu_y) ** 2 + LOG_2PI) * y_mask  # (B, D, T)
    return nll.sum() / (y_mask.sum() * y.shape[1])
