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

import numpy as np
import torch

NEG_INF = float("-inf")  # unreachable cells


@torch.no_grad()
def maximum_path(log_p: torch.Tensor, x_lengths: torch.Tensor, y_lengths: torch.Tensor) -> torch.Tensor:
    """Best monotonic path through ``log_p`` (B, N, T); returns a 0/1 float tensor (B, N, T).

    Each item uses only its first ``x_lengths[b]`` symbols and ``y_lengths[b]`` frames (needs
    ``x_lengths <= y_lengths``). Ties prefer staying on the current symbol, as in Glow-TTS.
    """
    b, n, t = log_p.shape
    device = log_p.device
    lp = log_p.float().permute(2, 0, 1).contiguous()  # (T, B, N): one contiguous slab per frame

    # Forward pass over frames. Column x + 1 of ``cur`` holds the best score of a path ending on
    # symbol x at the current frame; column 0 is a permanent -inf ("before the first symbol").
    # Unreachable cells (x > y) stay -inf by themselves; cells that can no longer reach the last
    # symbol never influence the backtrack, so no band mask is needed.
    cur = torch.full((b, n + 1), NEG_INF, device=device)
    nxt = cur.clone()
    cur[:, 1] = lp[0, :, 0]
    advanced = torch.zeros(t, b, n, dtype=torch.bool, device=device)  # came from x - 1 at frame y
    for y in range(1, t):
        stay, move = cur[:, 1:], cur[:, :-1]  # (B, N) each: from (x, y-1) and from (x-1, y-1)
        torch.gt(move, stay, out=advanced[y])  # strictly better to advance (ties stay)
        torch.maximum(stay, move, out=nxt[:, 1:])
        nxt[:, 1:] += lp[y]
        cur, nxt = nxt, cur

    # Backtrack from (N_b - 1, T_b - 1) for all items at once. Tiny gathers per frame are far
    # cheaper in numpy than as torch dispatches, so this part runs on the host.
    adv = advanced.cpu().numpy()  # (T, B, N)
    path = np.zeros((b, n, t), dtype=np.float32)
    rows = np.arange(b)
    index = np.clip(x_lengths.cpu().numpy().astype(np.int64) - 1, 0, None)  # (B,)
    y_len = y_lengths.cpu().numpy()
    for y in range(t - 1, -1, -1):
        active = y < y_len  # (B,)
        path[rows, index, y] = active
        index -= adv[y, rows, index] & active
    return torch.from_numpy(path).to(device=device, dtype=log_p.dtype)


def durations_from_path(path: torch.Tensor) -> torch.Tensor:
    """(B, N, T) hard alignment → (B, N) frames per symbol."""
    return path.sum(-1)


def round_durations(durations: torch.Tensor, rounding: str) -> torch.Tensor:
    """Whole frames per symbol as synthesis gives them: ``ceil`` (the release) or ``round``."""
    return torch.ceil(durations) if rounding == "ceil" else torch.round(durations)


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
