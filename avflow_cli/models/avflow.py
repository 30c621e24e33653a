"""AV-Flow: two windowed DiT stacks (audio, visual) with highway fusion, and the paper's ablations.

Interface (docs/ARCHITECTURE.md §2): ``AVFlow(config)(x, t, cond) -> v`` with
x (B, T, F+8+80) ordered [face | head latent | mel], t (B,) in [0, 1], cond (B, T, C) ordered
[tokens 29 | participant tokens 29 | participant visual 56/58] (guidance channels only when
the config enables them). The noisy target and cond are concatenated along channels, then
projected to the model width (in-context conditioning).

Fusion variants (paper Table 1), chosen by ``config.fusion``:
- ``highway`` (default, the release): after every block l, ``[y_a; y_v] = W_l [x_a; x_v] + b_l``,
  ``x_a += y_a``, ``x_v += y_v`` (audio first, as the release concatenates);
- ``separate``: the two stacks never exchange information;
- ``shared``: one stack on the concatenated streams;
- ``cascade``: the audio stack runs first; the visual stack is conditioned on the mel it
  implies, ``x̂1_mel = x_t,mel + (1 − t)·v_mel`` (the flow's one-step estimate of the clean mel),
  so inside one velocity evaluation the visual DiT sees the generated audio.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from avflow_cli.models.attention import AttentionPlan
from avflow_cli.models.config import AVFlowConfig
from avflow_cli.models.dit import DiTBlock, TimeEmbedding

if TYPE_CHECKING:  # pragma: no cover
    from avflow_cli.models.normalize import Normalizer


def _stack(cfg: AVFlowConfig) -> nn.ModuleList:
    return nn.ModuleList(
        DiTBlock(cfg.d_model, cfg.hidden_dim, cfg.heads, cfg.window_left, cfg.window_right, cfg.rope_base, cfg.attn_block)
        for _ in range(cfg.depth)
    )


class AVFlow(nn.Module):
    """The AV-Flow velocity network. ``config`` and ``normalizer`` travel with the module."""

    def __init__(self, config: AVFlowConfig) -> None:
        super().__init__()
        self.config = config.validate()
        self.normalizer: Normalizer | None = None
        self.components: dict[str, Any] = {}
        cfg = config
        D, C = cfg.d_model, cfg.cond_dim
        self.time_embed = TimeEmbedding(D, cfg.time_scale)
        if cfg.fusion == "shared":
            self.in_shared = nn.Linear(cfg.x_dim + C, D)
            self.shared_blocks = _stack(cfg)
            self.out_shared = nn.Linear(D, cfg.x_dim)
            return
        extra_v = cfg.mel_dim if cfg.fusion == "cascade" else 0  # cascade: visual sees the mel estimate
        self.in_visual = nn.Linear(cfg.visual_dim + C + extra_v, D)
        self.in_audio = nn.Linear(cfg.mel_dim + C, D)
        self.visual_blocks = _stack(cfg)
        self.audio_blocks = _stack(cfg)
        if cfg.fusion == "highway":
            self.fusion = nn.ModuleList(nn.Linear(2 * D, 2 * D) for _ in range(cfg.depth))
        self.out_visual = nn.Linear(D, cfg.visual_dim)
        self.out_audio = nn.Linear(D, cfg.mel_dim)

    # -----------------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor, key_mask: torch.Tensor | None = None,
                pos_offset: int = 0) -> torch.Tensor:
        """Velocity (B, T, X). ``key_mask`` (B, T) bool marks real frames of padded training windows
        (padded frames are then invisible to real ones); None: every frame is real. ``pos_offset``:
        RoPE position of frame 0 (streaming evaluates windows of a longer sequence, models/streaming.py)."""
        cfg = self.config
        B, T, _ = x.shape
        if x.shape[-1] != cfg.x_dim or cond.shape[-1] != cfg.cond_dim or cond.shape[:2] != x.shape[:2]:
            raise ValueError(f"AVFlow expects x (B, T, {cfg.x_dim}) and cond (B, T, {cfg.cond_dim}); "
                             f"got {tuple(x.shape)} and {tuple(cond.shape)}")
        if key_mask is not None and tuple(key_mask.shape) != (B, T):
            raise ValueError(f"AVFlow key_mask must be (B, T) = {(B, T)}, got {tuple(key_mask.shape)}")
        t = t.reshape(-1).expand(B) if t.numel() == 1 else t.reshape(B)  # (B,)
        temb = self.time_embed(t)  # (B, D)
        # RoPE table and block masks, built once for every layer (attention.py)
        rope = AttentionPlan(B, T, cfg.d_model // cfg.heads, cfg.rope_base, cfg.window_left, cfg.window_right,
                             cfg.attn_block, x.device, key_mask, pos_offset)
        if cfg.fusion == "shared":
            h = self.in_shared(torch.cat([x, cond], dim=-1))  # (B, T, D)
            for block in self.shared_blocks:
                h = block(h, temb, rope, key_mask)
            return self.out_shared(h)  # (B, T, F+8+80)
        x_v, x_a = x.split([cfg.visual_dim, cfg.mel_dim], dim=-1)  # (B, T, F+8), (B, T, 80)
        if cfg.fusion == "cascade":
            v_a = self._run_audio(torch.cat([x_a, cond], dim=-1), temb, rope, key_mask)  # (B, T, 80)
            mel_hat = x_a + (1 - t)[:, None, None].to(x_a.dtype) * v_a  # (B, T, 80) clean-mel estimate
            h_v = self.in_visual(torch.cat([x_v, cond, mel_hat], dim=-1))  # (B, T, D)
            for block in self.visual_blocks:
                h_v = block(h_v, temb, rope, key_mask)
            return torch.cat([self.out_visual(h_v), v_a], dim=-1)  # (B, T, F+8+80)
        h_v = self.in_visual(torch.cat([x_v, cond], dim=-1))  # (B, T, D)
        h_a = self.in_audio(torch.cat([x_a, cond], dim=-1))  # (B, T, D)
        for i in range(cfg.depth):
            h_v = self.visual_blocks[i](h_v, temb, rope, key_mask)
            h_a = self.audio_blocks[i](h_a, temb, rope, key_mask)
            if cfg.fusion == "highway":
                y_a, y_v = self.fusion[i](torch.cat([h_a, h_v], dim=-1)).chunk(2, dim=-1)  # 2 × (B, T, D)
                h_a = h_a + y_a
                h_v = h_v + y_v
        return torch.cat([self.out_visual(h_v), self.out_audio(h_a)], dim=-1)  # (B, T, F+8+80)

    def _run_audio(self, inp: torch.Tensor, temb: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor],
                   key_mask: torch.Tensor | None = None) -> torch.Tensor:
        h = self.in_audio(inp)  # (B, T, D)
        for block in self.audio_blocks:
            h = block(h, temb, rope, key_mask)
        return self.out_audio(h)  # (B, T, 80)

    # -----------------------------------------------------------------------------------------
    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def drop_guidance(cond: torch.Tensor, config: AVFlowConfig, p: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Zero every guidance channel of cond (B, T, C) for a random subset of samples (probability p).

    Zero is the "no guidance" value (normalised space), the same value ``generate`` feeds when
    no participant streams are given, so one model serves with and without guidance.

    Zero is also the mean participant, but only per channel: a real participant frame is never
    the all-zero vector (demo corpus: per-frame RMS of the 85 normalised guidance channels is
    ≥ 0.22, median 0.76), so the network can tell "absent" from "present" without a flag. An
    explicit presence channel was measured and did not help (issue 9: tiny, 400 steps, val loss
    with guidance 2.369 without the flag vs 2.386 with it; without guidance 2.320 vs 2.338).
    """
    if config.guidance_dim == 0 or p <= 0:
        return cond
    keep = (torch.rand(cond.shape[0], 1, 1, device=cond.device, generator=generator) >= p).to(cond.dtype)  # (B, 1, 1)
    tokens, guidance = cond.split([config.token_dim, config.guidance_dim], dim=-1)
    return torch.cat([tokens, guidance * keep], dim=-1)  # (B, T, C)
