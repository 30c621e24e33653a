"""Hard monotonic alignments between symbols and frames.

``maximum_path`` is monotonic alignment search (Glow-TTS): the path through the (symbols ×
frames) log-likelihood grid that starts at (0, 0), ends at (N−1, T−1), moves one frame at a
time and either stays on a symbol or advances by one, with the highest total score.
Glow-TTS and Matcha need a compiled Cython loop for it; here the dynamic programme loops only
over frames and handles the whole batch and every symbol per frame with tensor ops, so it
needs no compiler and stays fast for batches of long utterances.
Shapes: B batch, N symbols, T frames.
"""

from __future__ import annotations

import torch

NEG_INF = -1e9  # "unreachable"; finite so that sums of two stay finite in float32


@torch.no_grad()
def maximum_path(log_p: torch.Tensor, x_lengths: torch.Tensor, y_lengths: torch.Tensor) -> torch.Tensor:
    """Best monotonic path through ``log_p`` (B, N, T); returns a 0/1 float tensor (B, N, T).

    Each item uses only its first ``x_lengths[b]`` symbols and ``y_lengths[b]`` frames (needs
    ``x_lengths <= y_lengths``). Ties prefer staying on the current symbol, as in Glow-TTS.
    """
    b, n, t = log_p.shape
    device = log_p.device
    lp = log_p.float()
    sym = torch.arange(n, device=device)[None, :]  # (1, N)
    xl, yl = x_lengths.long()[:, None], y_lengths.long()[:, None]  # (B, 1)
    neg = torch.full((b, 1), NEG_INF, device=device)

    # Forward pass: value[:, x] = best score of a path ending on symbol x at the current frame.
    # A cell (x, y) is reachable iff x <= y (one symbol per frame at most) and
    # x >= N_b - T_b + y (the remaining frames can still reach the last symbol).
    value = torch.where(sym == 0, lp[:, :, 0], torch.full_like(lp[:, :, 0], NEG_INF))  # (B, N)
    advanced = torch.zeros(b, n, t, dtype=torch.bool, device=device)  # came from x - 1 at frame y
    for y in range(1, t):
        from_prev = torch.cat([neg, value[:, :-1]], dim=1)  # (B, N): score arriving from x - 1
        step = from_prev > value  # (B, N): strictly better to advance
        value = torch.maximum(value, from_prev) + lp[:, :, y]  # (B, N)
        band = (sym <= y) & (sym >= xl - yl + y)  # (B, N)
        value = torch.where(band, value, torch.full_like(value, NEG_INF))
        advanced[:, :, y] = step

    # Backtrack from (N_b − 1, T_b − 1) for all items at once.
    path = torch.zeros(b, n, t, dtype=log_p.dtype, device=device)
    rows = torch.arange(b, device=device)
    index = (x_lengths.long() - 1).clamp(min=0)  # (B,)
    for y in range(t - 1, -1, -1):
        active = y < y_lengths  # (B,)
        path[rows, index, y] = active.to(path.dtype)
        index = index - (advanced[rows, index, y] & active).long()
    return path


def durations_from_path(path: torch.Tensor) -> torch.Tensor:
    """(B, N, T) hard alignment → (B, N) frames per symbol."""
    return path.sum(-1)


def generate_path(durations: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Durations (B, N) → hard alignment (B, N, T): frame j goes to symbol i when end_{i-1} <= j < end_i.

    Durations may be fractional (speed control): the cumulative ends are compared as floats,
    as in the release. ``mask`` (B, N, T) zeroes padded symbols and frames.
    """
    t = mask.shape[2]
    ends = torch.cumsum(durations, dim=1)  # (B, N)
    frames = torch.arange(t, device=durations.device, dtype=ends.dtype)  # (T,)
    upto_end = (frames[None, None, :] < ends[:, :, None]).to(mask.dtype)  # (B, N, T): frames < end_i
    upto_start = torch.nn.functional.pad(upto_end, (0, 0, 1, 0))[:, :-1]  # frames < end_{i-1}
    return (upto_end - upto_start) * mask
