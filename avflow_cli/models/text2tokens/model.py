"""TextToTokens: text encoder + duration predictor + flow-matching decoder, composed (docs/release_format.md §5).

Text ids → prior means and durations → frames aligned to symbols → CFM decoder → 29-d ASR
token logits at ``FPS``. Parameter and buffer names equal the release's (``encoder.*``,
``decoder.estimator.*``, ``mean``, ``std``) so its raw state dict loads strictly.
Shapes: B batch, N symbols, T frames, D = 29 token channels.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from avflow_cli.models.text2tokens.alignment import generate_path, maximum_path, round_durations
from avflow_cli.models.text2tokens.config import LENGTH_MULTIPLE, T2TConfig
from avflow_cli.models.text2tokens.flow_matching import CFM
from avflow_cli.models.text2tokens.losses import duration_loss, gaussian_log_prior, log_durations, prior_loss
from avflow_cli.models.text2tokens.text_encoder import TextEncoder, sequence_mask


def pad_length(n: int) -> int:
    """Round a frame count up to a multiple of ``LENGTH_MULTIPLE`` (the U-Net halves it)."""
    return -(-n // LENGTH_MULTIPLE) * LENGTH_MULTIPLE


class TextToTokens(nn.Module):
    """The whole text-to-tokens model; ``synthesize(text)`` is the user-facing call."""

    def __init__(self, cfg: T2TConfig) -> None:
        super().__init__()
        self.config = cfg
        self.encoder = TextEncoder(cfg)
        self.decoder = CFM(cfg)
        self.register_buffer("mean", torch.tensor(cfg.token_mean, dtype=torch.float32))
        self.register_buffer("std", torch.tensor(cfg.token_std, dtype=torch.float32))

    # ------------------------------------------------------------------ normalisation
    def _stat(self, buf: torch.Tensor) -> torch.Tensor:
        return buf.view(-1, 1) if buf.ndim == 1 else buf  # (D, 1) or scalar, for (B, D, T)

    def normalize(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, D, T) raw logits → model space."""
        return (tokens - self._stat(self.mean)) / self._stat(self.std)

    def denormalize(self, y: torch.Tensor) -> torch.Tensor:
        """(B, D, T) model space → raw logits (the release: y · 4.5255 − 2.8461)."""
        return y * self._stat(self.std) + self._stat(self.mean)

    # ------------------------------------------------------------------ inference
    @torch.no_grad()
    def generate(
        self,
        x: torch.Tensor,
        x_lengths: torch.Tensor,
        *,
        steps: int | None = None,
        temperature: float | None = None,
        length_scale: float = 1.0,
        noise: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, N) ids, x_lengths (B,) → tokens (B, T, D) raw logits and their lengths (B,).

        Each symbol gets ceil (release) or round(exp(logw) · duration_scale) · length_scale frames
        (``duration_scale`` from the config, calibrated at training; larger ``length_scale`` = slower speech); fractional ends are rounded on the cumulative sum, as in the release.
        ``noise`` (B, D, pad_length(T)) fixes the sampler's start point.
        """
        cfg = self.config
        mu_x, logw, x_mask = self.encoder(x, x_lengths)  # (B, D, N), (B, 1, N), (B, 1, N)
        w = torch.exp(logw) * x_mask * cfg.duration_scale  # (B, 1, N); train/t2t_calibrate.py says why the scale
        w = round_durations(w, cfg.duration_rounding) * length_scale  # (B, 1, N)
        y_lengths = w.sum((1, 2)).clamp(min=1).long()  # (B,)
        t_max = pad_length(int(y_lengths.max()))
        y_mask = sequence_mask(y_lengths, t_max).unsqueeze(1).to(x_mask.dtype)  # (B, 1, T)
        attn = generate_path(w[:, 0], x_mask.transpose(1, 2) * y_mask)  # (B, N, T)
        mu_y = mu_x @ attn  # (B, D, T)
        y = self.decoder.sample(
            mu_y, y_mask, steps or cfg.steps, cfg.temperature if temperature is None else temperature,
            noise=noise, generator=generator,
        )  # (B, D, T)
        tokens = self.denormalize(y[:, :, : int(y_lengths.max())]).transpose(1, 2)  # (B, T, D)
        return tokens, y_lengths

    def synthesize(
        self, text: str, *, steps: int | None = None, length_scale: float = 1.0, seed: int = 0
    ) -> np.ndarray:
        """Text → (T, 29) float32 token logits at FPS. Raises AvflowError on empty/unknown-only text.

        ``steps`` Euler steps (default: the config's, 10 for ``base``/``release``);
        ``length_scale`` > 1 speaks slower, < 1 faster; ``seed`` fixes the sampler noise.
        """
        from avflow_cli.text import to_symbol_ids

        if length_scale <= 0:
            raise ValueError("length_scale must be positive")
        device = self.mean.device
        ids = torch.tensor([to_symbol_ids(text)], dtype=torch.long, device=device)  # (1, N)
        gen = torch.Generator(device=device).manual_seed(seed)
        was_training = self.training
        self.eval()
        try:
            tokens, lengths = self.generate(
                ids, torch.tensor([ids.shape[1]], device=device), steps=steps, length_scale=length_scale, generator=gen
            )
        finally:
            self.train(was_training)
        return tokens[0, : int(lengths[0])].float().cpu().numpy()

    # ------------------------------------------------------------------ training
    def forward(
        self, x: torch.Tensor, x_lengths: torch.Tensor, tokens: torch.Tensor, y_lengths: torch.Tensor,
        segment_frames: int = 0,
    ) -> dict[str, torch.Tensor]:
        """Training forward (what DDP wraps): the loss terms of ``compute_loss``."""
        return self.compute_loss(x, x_lengths, tokens, y_lengths, segment_frames)

    def compute_loss(
        self, x: torch.Tensor, x_lengths: torch.Tensor, tokens: torch.Tensor, y_lengths: torch.Tensor,
        segment_frames: int = 0,
    ) -> dict[str, torch.Tensor]:
        """Losses for a batch: ids x (B, N), raw token logits (B, T, D) at FPS with lengths (B,).

        Returns ``dur`` (log-duration MSE vs MAS), ``prior`` (Gaussian NLL of frames under the
        aligned means) and ``cfm`` (flow matching; on random crops of ``segment_frames`` frames
        when that is > 0 and shorter than the batch, which bounds the decoder's memory).
        """
        y = self.normalize(tokens.transpose(1, 2))  # (B, D, T)
        t_max = pad_length(y.shape[2])
        y = nn.functional.pad(y, (0, t_max - y.shape[2]))  # (B, D, T)
        y_mask = sequence_mask(y_lengths, t_max).unsqueeze(1).to(y.dtype)  # (B, 1, T)
        y = y * y_mask

        mu_x, logw, x_mask = self.encoder(x, x_lengths)  # (B, D, N), (B, 1, N), (B, 1, N)
        with torch.no_grad(), torch.autocast(y.device.type, enabled=False):  # MAS scores in fp32
            log_p = gaussian_log_prior(mu_x.float(), y.float())  # (B, N, T)
            attn = maximum_path(log_p, x_lengths, y_lengths)  # (B, N, T)
        dur = duration_loss(logw, log_durations(attn, x_mask), x_lengths)
        mu_y = mu_x @ attn  # (B, D, T)
        prior = prior_loss(y, mu_y, y_mask)

        if 0 < segment_frames and pad_length(segment_frames) < t_max:
            y, mu_y, y_mask = _random_crops(pad_length(segment_frames), y_lengths, y, mu_y, y_mask)
        cfm = self.decoder.loss(y, y_mask, mu_y)
        return {"dur": dur, "prior": prior, "cfm": cfm}


def _random_crops(
    seg: int, lengths: torch.Tensor, *tensors: torch.Tensor
) -> tuple[torch.Tensor, ...]:
    """The same random window of ``seg`` frames from each item of every (B, C, T) tensor."""
    b = lengths.shape[0]
    max_start = (lengths - seg).clamp(min=0)  # (B,)
    start = (torch.rand(b, device=lengths.device) * (max_start + 1)).long()  # (B,)
    idx = start[:, None] + torch.arange(seg, device=lengths.device)[None, :]  # (B, seg)
    return tuple(t.gather(2, idx[:, None, :].expand(-1, t.shape[1], -1)) for t in tensors)
