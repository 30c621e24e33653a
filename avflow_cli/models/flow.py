"""Flow matching for AV-Flow: OT-CFM training loss and the Euler sampler (docs/ARCHITECTURE.md §2).

x_t = (1 − (1 − σ)t)·x0 + t·x1, target velocity u = x1 − (1 − σ)·x0, σ = 1e-6, t ~ U[0, 1).
The loss is L1 per stream, combined as λ_s·L_mel + λ_f·L_face + λ_h·L_head (3.0 / 1.0 / 0.2), with
one mask per stream: the mel counts on every real frame (``frame_mask``: not window padding),
face and head only where they were tracked (``valid`` & ``frame_mask``). Speech in a tracking
gap is real speech and stays supervised. Padded frames are also hidden from attention.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from avflow_cli.models.config import AVFlowConfig


@dataclass
class LossWeights:
    mel: float = 3.0
    face: float = 1.0
    head: float = 0.2


def interpolate(x0: torch.Tensor, x1: torch.Tensor, t: torch.Tensor, sigma: float) -> tuple[torch.Tensor, torch.Tensor]:
    """OT path point x_t and its target velocity; x0, x1 (B, T, X), t (B,)."""
    tt = t[:, None, None]  # (B, 1, 1)
    xt = (1 - (1 - sigma) * tt) * x0 + tt * x1  # (B, T, X)
    return xt, x1 - (1 - sigma) * x0


def masked_l1(pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None) -> torch.Tensor:
    """Mean |pred − target| over valid frames and all dims; pred/target (B, T, D), valid (B, T) bool."""
    err = (pred.float() - target.float()).abs()  # (B, T, D)
    if valid is None:
        return err.mean()
    w = valid.to(err.dtype)[..., None]  # (B, T, 1)
    return (err * w).sum() / (w.sum() * err.shape[-1]).clamp_min(1.0)


def split_streams(x: torch.Tensor, cfg: AVFlowConfig) -> dict[str, torch.Tensor]:
    face, head, mel = x.split([cfg.face_dim, cfg.head_dim, cfg.mel_dim], dim=-1)
    return {"face": face, "head": head, "mel": mel}


def flow_loss(
    model: nn.Module,
    cfg: AVFlowConfig,
    x1: torch.Tensor,
    cond: torch.Tensor,
    valid: torch.Tensor | None,
    weights: LossWeights,
    sigma: float = 1e-6,
    generator: torch.Generator | None = None,
    x0: torch.Tensor | None = None,
    t: torch.Tensor | None = None,
    frame_mask: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """One OT-CFM loss evaluation. x1 (B, T, X) normalised target, cond (B, T, C).

    ``valid`` (B, T): face/head tracked; ``frame_mask`` (B, T): real frames, not padding (None:
    all real, and no key mask). Returns the weighted total and the per-stream L1 terms
    (detached). Noise x0 and time t are drawn from ``generator`` (or the global torch RNG)
    unless given (fixed-noise validation).
    """
    B = x1.shape[0]
    if x0 is None:
        x0 = torch.randn(x1.shape, device=x1.device, dtype=x1.dtype, generator=generator)  # (B, T, X)
    if t is None:
        t = torch.rand(B, device=x1.device, dtype=x1.dtype, generator=generator)  # (B,)
    xt, target = interpolate(x0, x1, t, sigma)
    v = model(xt, t, cond) if frame_mask is None else model(xt, t, cond, key_mask=frame_mask)  # (B, T, X)
    pred, tgt = split_streams(v, cfg), split_streams(target, cfg)
    visual = valid if frame_mask is None or valid is None else valid & frame_mask  # (B, T)
    masks = {"mel": frame_mask, "face": visual, "head": visual}
    terms = {name: masked_l1(pred[name], tgt[name], masks[name]) for name in ("mel", "face", "head")}
    total = weights.mel * terms["mel"] + weights.face * terms["face"] + weights.head * terms["head"]
    return total, {k: v.detach() for k, v in terms.items()}


@torch.no_grad()
def euler_sample(model: nn.Module, x0: torch.Tensor, cond: torch.Tensor, steps: int) -> torch.Tensor:
    """Integrate dx/dt = v(x, t) from t = 0 to 1 in ``steps`` equal Euler steps; any length T.

    The model is evaluated at t = 0, 1/n, …, (n−1)/n (as the release's ``euler_solver``).
    """
    x = x0  # (B, T, X)
    ts = torch.linspace(0, 1, steps + 1, device=x0.device)  # (n+1,)
    for i in range(steps):
        t = ts[i].expand(x.shape[0])  # (B,)
        v = model(x, t, cond)  # (B, T, X)
        x = x + (ts[i + 1] - ts[i]) * v.to(x.dtype)
    return x
