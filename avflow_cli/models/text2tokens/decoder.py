"""The flow-matching vector field: a 1D U-Net with ResNet and transformer blocks (Matcha-TTS decoder).

Input is the noisy sample concatenated with the aligned prior ``mu``; output is the velocity.
Shapes: B batch, C channels, T frames (a multiple of 4, see ``config.LENGTH_MULTIPLE``).
Module names follow the release so its state dict loads unchanged.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from avflow_cli.models.text2tokens.config import T2TConfig
from avflow_cli.models.text2tokens.transformer import BasicTransformerBlock

TIME_SCALE = 1000.0  # t in [0, 1] is scaled by this before the sinusoidal embedding
GROUPS = 8  # GroupNorm groups in every conv block


class SinusoidalPosEmb(nn.Module):
    """t (B,) → (B, dim) sin/cos features of ``TIME_SCALE · t``."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        if dim % 2:
            raise ValueError("SinusoidalPosEmb needs an even dim")
        self.dim = dim

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        t = t.reshape(-1)  # (B,)
        half = self.dim // 2
        freqs = torch.exp(torch.arange(half, device=t.device).float() * -(math.log(10000) / (half - 1)))
        args = TIME_SCALE * t[:, None] * freqs[None, :]  # (B, dim/2)
        return torch.cat([args.sin(), args.cos()], dim=-1)  # (B, dim)


class TimestepEmbedding(nn.Module):
    """Linear → SiLU → Linear."""

    def __init__(self, in_channels: int, dim: int) -> None:
        super().__init__()
        self.linear_1 = nn.Linear(in_channels, dim)
        self.act = nn.SiLU()
        self.linear_2 = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear_2(self.act(self.linear_1(x)))


class Block1D(nn.Module):
    """Masked conv k3 → GroupNorm → Mish."""

    def __init__(self, dim: int, dim_out: int) -> None:
        super().__init__()
        self.block = nn.Sequential(nn.Conv1d(dim, dim_out, 3, padding=1), nn.GroupNorm(GROUPS, dim_out), nn.Mish())

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.block(x * mask) * mask  # (B, C_out, T)


class ResnetBlock1D(nn.Module):
    """Two Block1Ds with the time embedding added between them, plus a 1×1 residual conv."""

    def __init__(self, dim: int, dim_out: int, time_emb_dim: int) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Mish(), nn.Linear(time_emb_dim, dim_out))
        self.block1 = Block1D(dim, dim_out)
        self.block2 = Block1D(dim_out, dim_out)
        self.res_conv = nn.Conv1d(dim, dim_out, 1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, t_emb: torch.Tensor) -> torch.Tensor:
        h = self.block1(x, mask) + self.mlp(t_emb).unsqueeze(-1)  # (B, C_out, T)
        return self.block2(h, mask) + self.res_conv(x * mask)  # (B, C_out, T)


class Downsample1D(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(dim, dim, 3, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)  # (B, C, T/2)


class Upsample1D(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.conv = nn.ConvTranspose1d(dim, dim, 4, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)  # (B, C, 2T)


def _run_transformers(blocks: nn.ModuleList, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Apply transformer blocks to channels-first x (B, C, T) with mask (B, 1, T)."""
    h = x.transpose(1, 2)  # (B, T, C)
    for block in blocks:
        h = block(h, mask[:, 0])  # (B, T, C)
    return h.transpose(1, 2)  # (B, C, T)


class Decoder(nn.Module):
    """U-Net: down blocks (last one keeps the rate), mid blocks, up blocks with skips, final conv."""

    def __init__(self, cfg: T2TConfig) -> None:
        super().__init__()
        in_channels, out_channels = 2 * cfg.n_feats, cfg.n_feats
        channels = tuple(cfg.channels)
        time_dim = channels[0] * 4
        self.time_embeddings = SinusoidalPosEmb(in_channels)
        self.time_mlp = TimestepEmbedding(in_channels, time_dim)

        def transformers(dim: int) -> nn.ModuleList:
            return nn.ModuleList(
                BasicTransformerBlock(dim, cfg.num_heads, cfg.attention_head_dim, cfg.dec_dropout, cfg.additive_attention_mask)
                for _ in range(cfg.n_blocks)
            )

        self.down_blocks = nn.ModuleList()
        out_ch = in_channels
        for i, ch in enumerate(channels):
            in_ch, out_ch = out_ch, ch
            is_last = i == len(channels) - 1
            down = nn.Conv1d(out_ch, out_ch, 3, padding=1) if is_last else Downsample1D(out_ch)
            self.down_blocks.append(nn.ModuleList([ResnetBlock1D(in_ch, out_ch, time_dim), transformers(out_ch), down]))

        self.mid_blocks = nn.ModuleList(
            nn.ModuleList([ResnetBlock1D(channels[-1], channels[-1], time_dim), transformers(channels[-1])])
            for _ in range(cfg.num_mid_blocks)
        )

        up_channels = channels[::-1] + (channels[0],)
        self.up_blocks = nn.ModuleList()
        for i in range(len(up_channels) - 1):
            in_ch, out_ch = up_channels[i], up_channels[i + 1]
            is_last = i == len(up_channels) - 2
            up = nn.Conv1d(out_ch, out_ch, 3, padding=1) if is_last else Upsample1D(out_ch)
            self.up_blocks.append(nn.ModuleList([ResnetBlock1D(2 * in_ch, out_ch, time_dim), transformers(out_ch), up]))

        self.final_block = Block1D(up_channels[-1], up_channels[-1])
        self.final_proj = nn.Conv1d(up_channels[-1], out_channels, 1)
        self._init_weights()

    def _init_weights(self) -> None:
        """Kaiming-normal convs and linears with zero biases, unit GroupNorms (as the release)."""
        for m in self.modules():
            if isinstance(m, (nn.Conv1d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.GroupNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, mu: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """x, mu (B, 29, T), mask (B, 1, T), t (B,) or () → velocity (B, 29, T)."""
        t_emb = self.time_mlp(self.time_embeddings(t))  # (B, time_dim)
        h = torch.cat([x, mu], dim=1)  # (B, 58, T)

        skips, masks = [], [mask]
        for resnet, blocks, down in self.down_blocks:
            m = masks[-1]
            h = _run_transformers(blocks, resnet(h, m, t_emb), m)  # (B, C, T_l)
            skips.append(h)
            h = down(h * m)  # (B, C, T_l / 2) except after the last block
            masks.append(m[:, :, ::2])

        masks = masks[:-1]
        m = masks[-1]
        for resnet, blocks in self.mid_blocks:
            h = _run_transformers(blocks, resnet(h, m, t_emb), m)  # (B, C, T_mid)

        for resnet, blocks, up in self.up_blocks:
            m = masks.pop()
            h = resnet(torch.cat([h, skips.pop()], dim=1), m, t_emb)  # (B, C, T_l)
            h = up(_run_transformers(blocks, h, m) * m)  # (B, C, 2·T_l) except after the last block

        h = self.final_block(h, m)  # (B, C, T)
        return self.final_proj(h * m) * mask  # (B, 29, T)
