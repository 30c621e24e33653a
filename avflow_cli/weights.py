"""Comparing a state dict with a model: one report, used by every strict loader.

A checkpoint of another architecture should fail with a line that names what differs (a few
missing, unexpected and wrongly shaped keys), not with PyTorch's multi-page message.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

EXAMPLES = 3  # keys quoted per kind of mismatch


def state_dict_mismatch(model: nn.Module, state: Mapping[str, torch.Tensor]) -> str | None:
    """None when ``state`` fits ``model`` exactly (keys and shapes), else a one-line summary."""
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = [f"{k}: file {tuple(state[k].shape)} vs model {expected[k]}"
             for k in sorted(set(expected) & set(state)) if tuple(state[k].shape) != expected[k]]
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing (e.g. {', '.join(missing[:EXAMPLES])})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected (e.g. {', '.join(unexpected[:EXAMPLES])})")
    if wrong:
        parts.append(f"{len(wrong)} with wrong shape (e.g. {'; '.join(wrong[:EXAMPLES])})")
    return "; ".join(parts) or None
