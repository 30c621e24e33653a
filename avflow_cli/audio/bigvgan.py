"""The BigVGAN generator (Lee et al. 2023), loading NVIDIA's released folders.

BigVGAN is the HiFi-GAN generator (:mod:`avflow_cli.audio.hifigan`) with its leaky ReLUs replaced
by anti-aliased periodic activations ("AMP" blocks): each activation upsamples the signal 2× with
a Kaiser-windowed sinc filter, applies Snake ``x + sin²(αx)/α`` or SnakeBeta ``x + sin²(αx)/β``
(α, β per channel, stored as logs when ``snake_logscale``), and low-pass filters back down 2×, so
the harmonics the nonlinearity creates do not alias. Nothing precedes the upsamplers; the final
activation is also anti-aliased Snake.

A release folder holds ``config.json`` and ``bigvgan_generator.pt`` (``{"generator": state_dict}``
with weight-normalised convs). Key names follow the release: ``ups.{i}.0.*`` (the upsampler sits
in a one-element list), ``resblocks.{k}.activations.{j}.act.{alpha,beta}``,
``…activations.{j}.upsample.filter``, ``…activations.{j}.downsample.lowpass.filter`` and
``activation_post.*``.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from avflow_cli.audio.hifigan import (
    Generator,
    GeneratorConfig,
    freeze,
    load_state_strict,
    read_generator_state,
)
from avflow_cli.errors import InputFileError

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "bigvgan_generator.pt"
AA_RATIO = 2  # anti-aliased activations run at twice the rate
AA_KERNEL = 12  # taps of the up- and down-sampling filters
SNAKE_EPS = 1e-9  # the release's guard against division by zero


# ----------------------------------------------------------------------------------------------
# Periodic activations
# ----------------------------------------------------------------------------------------------
class Snake(nn.Module):
    """Snake: x + sin²(αx) / α, one α per channel (log-parametrised when ``logscale``)."""

    def __init__(self, channels: int, logscale: bool = True):
        super().__init__()
        self.logscale = logscale
        self.alpha = nn.Parameter(torch.zeros(channels) if logscale else torch.ones(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, L)
        a = self.alpha[None, :, None]  # (1, C, 1)
        if self.logscale:
            a = a.exp()
        return x + torch.sin(x * a).pow(2) / (a + SNAKE_EPS)


class SnakeBeta(nn.Module):
    """SnakeBeta: x + sin²(αx) / β, separate per-channel frequency α and magnitude β."""

    def __init__(self, channels: int, logscale: bool = True):
        super().__init__()
        self.logscale = logscale
        init = torch.zeros(channels) if logscale else torch.ones(channels)
        self.alpha = nn.Parameter(init.clone())
        self.beta = nn.Parameter(init.clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, L)
        a, b = self.alpha[None, :, None], self.beta[None, :, None]  # (1, C, 1)
        if self.logscale:
            a, b = a.exp(), b.exp()
        return x + torch.sin(x * a).pow(2) / (b + SNAKE_EPS)


# ----------------------------------------------------------------------------------------------
# Anti-aliasing filters
# ----------------------------------------------------------------------------------------------
def kaiser_sinc_filter(cutoff: float, half_width: float, kernel_size: int) -> torch.Tensor:
    """Low-pass FIR (1, 1, K): sinc at ``cutoff`` (fraction of the sample rate) under a Kaiser window.

    The Kaiser β follows Kaiser's empirical formula for the attenuation A (dB) implied by the
    transition width; taps are normalised to sum to 1 so DC passes unchanged.
    """
    half = kernel_size // 2
    attenuation = 2.285 * (half - 1) * math.pi * (4 * half_width) + 7.95
    if attenuation > 50.0:
        beta = 0.1102 * (attenuation - 8.7)
    elif attenuation >= 21.0:
        beta = 0.5842 * (attenuation - 21.0) ** 0.4 + 0.07886 * (attenuation - 21.0)
    else:
        beta = 0.0
    window = torch.kaiser_window(kernel_size, periodic=False, beta=beta)
    if kernel_size % 2 == 0:
        t = torch.arange(-half, half) + 0.5  # taps between samples for even lengths
    else:
        t = torch.arange(kernel_size) - half
    taps = 2 * cutoff * window * torch.sinc(2 * cutoff * t)
    return (taps / taps.sum()).view(1, 1, kernel_size)


class UpSample1d(nn.Module):
    """Zero-stuffing upsampler by ``ratio`` followed by the sinc low-pass (as a transposed conv)."""

    def __init__(self, ratio: int = AA_RATIO, kernel_size: int = AA_KERNEL):
        super().__init__()
        self.ratio = ratio
        self.pad = kernel_size // ratio - 1
        self.crop_left = self.pad * ratio + (kernel_size - ratio) // 2
        self.crop_right = self.pad * ratio + (kernel_size - ratio + 1) // 2
        self.register_buffer("filter", kaiser_sinc_filter(0.5 / ratio, 0.6 / ratio, kernel_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, L) -> (B, C, L·ratio)
        c = x.shape[1]
        x = F.pad(x, (self.pad, self.pad), mode="replicate")  # (B, C, L + 2·pad)
        x = self.ratio * F.conv_transpose1d(x, self.filter.expand(c, -1, -1), stride=self.ratio, groups=c)
        return x[..., self.crop_left : x.shape[-1] - self.crop_right]  # (B, C, L·ratio)


class LowPassFilter1d(nn.Module):
    """Depthwise sinc low-pass with replicate padding, optionally strided (decimation)."""

    def __init__(self, cutoff: float, half_width: float, stride: int, kernel_size: int = AA_KERNEL):
        super().__init__()
        even = kernel_size % 2 == 0
        self.pad_left = kernel_size // 2 - int(even)
        self.pad_right = kernel_size // 2
        self.stride = stride
        self.register_buffer("filter", kaiser_sinc_filter(cutoff, half_width, kernel_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, L) -> (B, C, ~L/stride)
        c = x.shape[1]
        x = F.pad(x, (self.pad_left, self.pad_right), mode="replicate")
        return F.conv1d(x, self.filter.expand(c, -1, -1), stride=self.stride, groups=c)


class DownSample1d(nn.Module):
    """Low-pass at the new Nyquist, then keep every ``ratio``-th sample."""

    def __init__(self, ratio: int = AA_RATIO, kernel_size: int = AA_KERNEL):
        super().__init__()
        self.lowpass = LowPassFilter1d(0.5 / ratio, 0.6 / ratio, ratio, kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, L·ratio) -> (B, C, L)
        return self.lowpass(x)


class Activation1d(nn.Module):
    """Anti-aliased activation: upsample 2×, nonlinearity, downsample 2×."""

    def __init__(self, act: nn.Module):
        super().__init__()
        self.act = act
        self.upsample = UpSample1d()
        self.downsample = DownSample1d()

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, L) -> (B, C, L)
        return self.downsample(self.act(self.upsample(x)))


# ----------------------------------------------------------------------------------------------
# Generator and release loading
# ----------------------------------------------------------------------------------------------
def _periodic(cfg: GeneratorConfig) -> type[nn.Module]:
    if cfg.activation == "snake":
        return Snake
    if cfg.activation == "snakebeta":
        return SnakeBeta
    raise ValueError(f"activation must be 'snake' or 'snakebeta', got {cfg.activation!r}")


def build_bigvgan(cfg: GeneratorConfig) -> Generator:
    """BigVGAN generator for ``cfg`` (randomly initialised; load weights with :func:`load_bigvgan`)."""
    act_cls = _periodic(cfg)
    c_last = cfg.upsample_initial_channel // 2 ** len(cfg.upsample_rates)
    return Generator(
        cfg,
        block_act=lambda ch: Activation1d(act_cls(ch, cfg.snake_logscale)),
        post_act=Activation1d(act_cls(c_last, cfg.snake_logscale)),
        pre_up_act=None,
        post_bias=cfg.use_bias_at_final,
        final_tanh=cfg.use_tanh_at_final,
    )


_UPS_KEY = re.compile(r"^ups\.(\d+)\.0\.")


def release_to_generator_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map the release's ``ups.{i}.0.*`` onto our ``ups.{i}.*`` (every other key is the same)."""
    return {_UPS_KEY.sub(r"ups.\1.", k): v for k, v in state.items()}


def generator_to_release_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Inverse of :func:`release_to_generator_keys` (used to write release-format files)."""
    return {re.sub(r"^ups\.(\d+)\.", r"ups.\1.0.", k): v for k, v in state.items()}


def resolve_folder(path: str | Path) -> Path:
    """Accept the release folder or its ``bigvgan_generator.pt``; check both files are there."""
    path = Path(path)
    folder = path.parent if path.is_file() else path
    if not folder.is_dir():
        raise InputFileError(path, "BigVGAN folder not found")
    for name in (CONFIG_FILE, WEIGHTS_FILE):
        if not (folder / name).is_file():
            raise InputFileError(folder, f"not a BigVGAN release folder: {name} is missing")
    return folder


def load_bigvgan(path: str | Path) -> Generator:
    """BigVGAN from a release folder (``config.json`` + ``bigvgan_generator.pt``), strictly loaded.

    Refuses configs whose mel recipe differs from avflow's (e.g. the v2 22 kHz release with
    fmax = 11025 Hz) and weights that do not match the config, naming the file.
    """
    folder = resolve_folder(path)
    cfg = GeneratorConfig.from_json(folder / CONFIG_FILE)
    cfg.check_mel_recipe(folder / CONFIG_FILE)
    try:
        model = build_bigvgan(cfg)
    except ValueError as err:
        raise InputFileError(folder / CONFIG_FILE, str(err)) from None
    state = release_to_generator_keys(read_generator_state(folder / WEIGHTS_FILE))
    load_state_strict(model, state, folder / WEIGHTS_FILE)
    return freeze(model)
