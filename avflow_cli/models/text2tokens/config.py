"""Text-to-tokens configuration: one dataclass, three named presets (docs/release_format.md §5).

Same idiom as :mod:`avflow_cli.models.config`: a preset is a dict of the fields it changes, and
``config.json`` round-trips through ``to_json_dict`` / ``dataclass_from_dict``.

``release`` reproduces the authors' module exactly (so ``text_to_tokens.pth`` loads);
``base`` has the same dimensions but masks decoder attention properly, rounds durations
instead of ceiling them and normalises tokens with statistics of the training data; ``tiny``
is small enough to train in minutes on a CPU and samples at a lower temperature (0.3), which
gives much cleaner tokens from a briefly trained decoder.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from avflow_cli.constants import TOKEN_DIM
from avflow_cli.errors import AvflowError
from avflow_cli.text.symbols import N_SYMBOLS

# The release's token normalisation: tokens = decoder_output * RELEASE_STD + RELEASE_MEAN.
RELEASE_TOKEN_MEAN = -2.8461
RELEASE_TOKEN_STD = 4.5255
RELEASE_TOKEN_SOURCE = "wav2vec2 (wav2vec2_asr_base_960h)"  # trained on the release data's Wav2Vec2 logits
# Output lengths are padded up to a multiple of this before the U-Net (the release: 2 ** 2).
LENGTH_MULTIPLE = 4


@dataclass
class T2TConfig:
    """Architecture, sampling and normalisation of the text-to-tokens model."""

    preset: str = "base"
    n_vocab: int = N_SYMBOLS
    n_feats: int = TOKEN_DIM  # output channels: 29 ASR logits per frame at FPS
    # --- text encoder (conv prenet + post-norm transformer with partial RoPE) ---
    n_channels: int = 192
    filter_channels: int = 768
    n_heads: int = 2
    n_layers: int = 6
    kernel_size: int = 3
    p_dropout: float = 0.1
    prenet: bool = True
    prenet_kernel: int = 5
    prenet_layers: int = 3
    prenet_dropout: float = 0.5
    # --- duration predictor ---
    filter_channels_dp: int = 256
    kernel_size_dp: int = 3
    p_dropout_dp: float = 0.1
    # --- U-Net decoder ---
    channels: tuple[int, ...] = (256, 256)
    dec_dropout: float = 0.05
    attention_head_dim: int = 64
    n_blocks: int = 1
    num_mid_blocks: int = 2
    num_heads: int = 2
    # True: the release's decoder attention, which *adds* the 0/1 frame mask to the scores
    # (diffusers' float-mask convention) instead of masking padded frames; False: real masking.
    additive_attention_mask: bool = False
    # frames per symbol at synthesis: "ceil" (the release) or "round"; ceil adds half a frame per
    # symbol on average (~15 % longer speech with blanks interspersed), round adds nothing
    duration_rounding: str = "round"
    # predicted durations × this before rounding: exp of a regressed log-duration is a geometric
    # mean, shorter than the true durations; `avflow train t2t` measures the factor on its training
    # utterances and stores it here (avflow_cli/train/t2t_calibrate.py). 1.0: uncalibrated, as the release.
    duration_scale: float = 1.0
    # --- flow matching ---
    sigma_min: float = 1e-4
    temperature: float = 0.667  # noise scale at sampling (release: 0.667)
    steps: int = 10
    # --- output normalisation: tokens = y * std + mean; scalar or one value per channel ---
    token_mean: float | list[float] = 0.0
    token_std: float | list[float] = 1.0
    # --- the tokens it was trained to write (data/token_source.py); "" = unknown ---
    token_source: str = ""

    def validate(self) -> T2TConfig:
        """One-line errors for sizes the modules cannot build."""
        for name in ("n_vocab", "n_feats", "n_channels", "filter_channels", "n_heads", "n_layers", "kernel_size",
                     "filter_channels_dp", "kernel_size_dp", "attention_head_dim", "n_blocks", "num_heads"):
            if getattr(self, name) < 1:
                raise AvflowError(f"model.{name} must be at least 1, got {getattr(self, name)}")
        for name in ("prenet_kernel", "prenet_layers", "num_mid_blocks"):
            if getattr(self, name) < 0:
                raise AvflowError(f"model.{name} must be 0 or more, got {getattr(self, name)}")
        if self.n_channels % self.n_heads or (self.n_channels // self.n_heads) % 4:
            raise AvflowError(f"model.n_channels={self.n_channels} must split into {self.n_heads} heads of a size divisible by 4")
        if not self.channels or any(c % 8 for c in self.channels):
            raise AvflowError(f"model.channels={self.channels} must be non-empty multiples of 8 (GroupNorm groups)")
        if self.duration_rounding not in ("ceil", "round"):
            raise AvflowError(f"model.duration_rounding must be 'ceil' or 'round', got {self.duration_rounding!r}")
        if not (math.isfinite(self.duration_scale) and self.duration_scale > 0):
            raise AvflowError(f"model.duration_scale must be a finite positive number, got {self.duration_scale}")
        if self.steps < 1 or self.temperature < 0:
            raise AvflowError("model.steps must be >= 1 and model.temperature >= 0")
        return self


# the fields each preset changes from the defaults above
PRESETS: dict[str, dict[str, Any]] = {
    "tiny": dict(n_channels=64, filter_channels=192, n_heads=2, n_layers=2, filter_channels_dp=64, channels=(48, 48),
                 attention_head_dim=24, num_heads=2, num_mid_blocks=1, steps=6, temperature=0.3),
    "base": dict(),
    "release": dict(additive_attention_mask=True, duration_rounding="ceil", token_mean=RELEASE_TOKEN_MEAN,
                    token_std=RELEASE_TOKEN_STD, token_source=RELEASE_TOKEN_SOURCE),
}


def preset(name: str, **overrides: Any) -> T2TConfig:
    """A named configuration (``tiny``, ``base``, ``release``), optionally with field overrides."""
    if name not in PRESETS:
        raise AvflowError(f"unknown text-to-tokens preset {name!r}; choose from {', '.join(PRESETS)}")
    return T2TConfig(**{"preset": name, **PRESETS[name], **overrides})
__all__ = ["T2TConfig", "PRESETS", "preset", "RELEASE_TOKEN_MEAN", "RELEASE_TOKEN_STD", "LENGTH_MULTIPLE"]
