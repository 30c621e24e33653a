"""The HiFi-GAN generator (Kong et al. 2020, "V1"), and the code BigVGAN shares with it.

Both vocoders are the same network: ``conv_pre`` (mel → C channels, kernel 7), then per stage a
transposed-conv upsampler ``ups[i]`` followed by ``len(resblock_kernel_sizes)`` residual blocks
whose outputs are averaged, then ``conv_post`` (→ 1 channel, kernel 7) and tanh. They differ only
in the activations (HiFi-GAN: leaky ReLU 0.1 before every conv and upsampler, 0.01 before
``conv_post``; BigVGAN: anti-aliased Snake/SnakeBeta inside the blocks and before ``conv_post``,
nothing before the upsamplers) and in a few key names, so :class:`Generator` takes the
activation as a factory and the loaders map key names.

Released checkpoints store weight-normalised convs (``weight_g``/``weight_v``); they are folded
into plain weights at load time (``w = g · v / ‖v‖``), which is what ``remove_weight_norm`` does,
so inference runs on plain convs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path

import torch
import torch.nn as nn

from avflow_cli.constants import HOP_LENGTH, MEL_FMAX, MEL_FMIN, N_FFT, N_MELS, SAMPLE_RATE, WIN_LENGTH
from avflow_cli.errors import InputFileError
from avflow_cli.jsonfile import read_json_config
from avflow_cli.weights import state_dict_mismatch

HIFIGAN_LRELU_SLOPE = 0.1  # inside blocks and before each upsampler
HIFIGAN_POST_LRELU_SLOPE = 0.01  # before conv_post (the reference uses F.leaky_relu's default)
AA_SPAN = 6  # samples each side an anti-aliased activation reaches (12-tap filters, 2x)
CHECKPOINT_KEY = "generator"  # both releases store {"generator": state_dict}


# ----------------------------------------------------------------------------------------------
# Config
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class GeneratorConfig:
    """The architecture and mel-recipe fields of a HiFi-GAN / BigVGAN ``config.json``."""

    upsample_rates: tuple[int, ...] = (8, 8, 2, 2)
    upsample_kernel_sizes: tuple[int, ...] = (16, 16, 4, 4)
    upsample_initial_channel: int = 512
    resblock: str = "1"
    resblock_kernel_sizes: tuple[int, ...] = (3, 7, 11)
    resblock_dilation_sizes: tuple[tuple[int, ...], ...] = ((1, 3, 5), (1, 3, 5), (1, 3, 5))
    num_mels: int = N_MELS
    sampling_rate: int = SAMPLE_RATE
    n_fft: int = N_FFT
    hop_size: int = HOP_LENGTH
    win_size: int = WIN_LENGTH
    fmin: float = MEL_FMIN
    fmax: float | None = MEL_FMAX
    # BigVGAN only
    activation: str = "snakebeta"
    snake_logscale: bool = True
    use_tanh_at_final: bool = True
    use_bias_at_final: bool = True

    @classmethod
    def from_dict(cls, raw: Mapping) -> GeneratorConfig:
        """Keep the known fields of a release ``config.json`` (training-only keys are ignored)."""
        known = {f.name for f in fields(cls)}
        kw = {}
        for k, v in raw.items():
            if k not in known:
                continue
            if k == "resblock_dilation_sizes":
                v = tuple(tuple(int(d) for d in ds) for ds in v)
            elif isinstance(v, list):
                v = tuple(v)
            elif k == "resblock":
                v = str(v)
            kw[k] = v
        return cls(**kw)

    @classmethod
    def from_json(cls, path: str | Path) -> GeneratorConfig:
        """Read a release ``config.json``; unreadable or malformed files are one-line errors."""
        path = Path(path)
        raw = read_json_config(path)
        if not isinstance(raw, dict):
            raise InputFileError(path, "config.json must hold a JSON object")
        try:
            return cls.from_dict(raw)
        except (TypeError, ValueError) as err:
            raise InputFileError(path, f"malformed vocoder config ({err})") from err

    @property
    def hop(self) -> int:
        """Samples per mel frame produced by the upsamplers."""
        return math.prod(self.upsample_rates)

    def check_mel_recipe(self, source: str | Path) -> None:
        """Refuse checkpoints trained on another mel recipe than avflow's (docs/ARCHITECTURE.md §1).

        A vocoder fed a mel with another fmax or hop produces garbled audio without any error,
        so a mismatch here is a hard, explained error instead.
        """
        expected = {
            "sampling_rate": SAMPLE_RATE,
            "num_mels": N_MELS,
            "n_fft": N_FFT,
            "hop_size": HOP_LENGTH,
            "win_size": WIN_LENGTH,
            "fmin": MEL_FMIN,
            "fmax": MEL_FMAX,
        }
        bad = []
        for name, want in expected.items():
            got = getattr(self, name)
            if got is None or float(got) != float(want):
                shown = "null (= sampling_rate / 2)" if got is None else got
                bad.append(f"{name}={shown} (avflow uses {want:g})")
        if self.hop != HOP_LENGTH:
            bad.append(f"product of upsample_rates={self.hop} (avflow needs {HOP_LENGTH})")
        if bad:
            raise InputFileError(
                source,
                "vocoder was trained on another mel recipe than avflow's: " + "; ".join(bad)
                + " (use a 22 kHz 80-band fmax-8000 release such as bigvgan_base_22khz_80band)",
            )


# ----------------------------------------------------------------------------------------------
# Network
# ----------------------------------------------------------------------------------------------
ActFactory = Callable[[int], nn.Module]


def get_padding(kernel_size: int, dilation: int = 1) -> int:
    """'Same' padding of a stride-1 dilated conv."""
    return (kernel_size * dilation - dilation) // 2


class ResBlock(nn.Module):
    """Residual block: per dilation d, x += conv_1(act(conv_d(act(x)))) ("1"), or x += conv_d(act(x)) ("2").

    In BigVGAN this is the AMP block (activations are anti-aliased Snake); in HiFi-GAN the
    activations are leaky ReLUs, which hold no parameters, so the state-dict keys agree.
    """

    def __init__(self, channels: int, kernel_size: int, dilations: tuple[int, ...], act: ActFactory, kind: str):
        super().__init__()
        if kind not in ("1", "2"):
            raise ValueError(f"resblock must be '1' or '2', got {kind!r}")
        self.kind = kind

        def conv(d: int) -> nn.Conv1d:
            return nn.Conv1d(channels, channels, kernel_size, dilation=d, padding=get_padding(kernel_size, d))

        if kind == "1":
            self.convs1 = nn.ModuleList(conv(d) for d in dilations)
            self.convs2 = nn.ModuleList(conv(1) for _ in dilations)
            n_act = 2 * len(dilations)
        else:
            self.convs = nn.ModuleList(conv(d) for d in dilations)
            n_act = len(dilations)
        self.activations = nn.ModuleList(act(channels) for _ in range(n_act))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, L) -> (B, C, L)
        if self.kind == "1":
            a1, a2 = self.activations[::2], self.activations[1::2]
            for c1, c2, f1, f2 in zip(self.convs1, self.convs2, a1, a2):
                x = x + c2(f2(c1(f1(x))))  # (B, C, L)
        else:
            for c, f in zip(self.convs, self.activations):
                x = x + c(f(x))  # (B, C, L)
        return x


class Generator(nn.Module):
    """Mel (B, num_mels, T) → waveform (B, 1, T · hop); see the module docstring."""

    def __init__(
        self,
        cfg: GeneratorConfig,
        block_act: ActFactory,
        post_act: nn.Module,
        pre_up_act: ActFactory | None,
        *,
        post_bias: bool = True,
        final_tanh: bool = True,
    ):
        super().__init__()
        if len(cfg.upsample_rates) != len(cfg.upsample_kernel_sizes):
            raise ValueError("upsample_rates and upsample_kernel_sizes differ in length")
        if len(cfg.resblock_kernel_sizes) != len(cfg.resblock_dilation_sizes):
            raise ValueError("resblock_kernel_sizes and resblock_dilation_sizes differ in length")
        self.cfg = cfg
        self.num_kernels = len(cfg.resblock_kernel_sizes)
        c0 = cfg.upsample_initial_channel
        self.conv_pre = nn.Conv1d(cfg.num_mels, c0, 7, padding=3)
        self.ups = nn.ModuleList(
            nn.ConvTranspose1d(c0 // 2**i, c0 // 2 ** (i + 1), k, u, padding=(k - u) // 2)
            for i, (u, k) in enumerate(zip(cfg.upsample_rates, cfg.upsample_kernel_sizes))
        )
        self.pre_up_acts = nn.ModuleList(
            (pre_up_act(c0 // 2**i) if pre_up_act else nn.Identity()) for i in range(len(self.ups))
        )
        self.resblocks = nn.ModuleList()
        ch = c0
        for i in range(len(self.ups)):
            ch = c0 // 2 ** (i + 1)
            for k, d in zip(cfg.resblock_kernel_sizes, cfg.resblock_dilation_sizes):
                self.resblocks.append(ResBlock(ch, k, d, block_act, cfg.resblock))
        self.activation_post = post_act
        self.conv_post = nn.Conv1d(ch, 1, 7, padding=3, bias=post_bias)
        self.final_tanh = final_tanh

    @property
    def hop(self) -> int:
        return self.cfg.hop

    def receptive_field_frames(self) -> int:
        """Mel frames on each side that can influence an output sample (an upper bound).

        Lets chunked inference add enough context for chunks to equal one-pass inference.
        Anti-aliased activations are counted as ±AA_SPAN samples each at their rate.
        """
        cfg = self.cfg
        aa = AA_SPAN if isinstance(self.activation_post, nn.Module) and any(
            b.numel() for b in self.activation_post.buffers()
        ) else 0
        frames = 3.0  # conv_pre, kernel 7
        scale = 1
        for u, k in zip(cfg.upsample_rates, cfg.upsample_kernel_sizes):
            frames += math.ceil(k / (2 * u)) / scale  # transposed conv, in input samples
            scale *= u
            per_block = []
            for ks, ds in zip(cfg.resblock_kernel_sizes, cfg.resblock_dilation_sizes):
                half = (ks - 1) // 2
                span = sum(half * d + (half if cfg.resblock == "1" else 0) for d in ds)
                per_block.append(span + aa * (2 if cfg.resblock == "1" else 1) * len(ds))
            frames += max(per_block) / scale
        frames += (3 + aa) / scale  # activation_post + conv_post
        return math.ceil(frames)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:  # (B, M, T) -> (B, 1, T·hop)
        x = self.conv_pre(mel)  # (B, C0, T)
        for i, up in enumerate(self.ups):
            x = up(self.pre_up_acts[i](x))  # (B, C_i, T·∏u)
            blocks = self.resblocks[i * self.num_kernels : (i + 1) * self.num_kernels]
            xs = blocks[0](x)
            for block in blocks[1:]:
                xs = xs + block(x)
            x = xs / self.num_kernels  # (B, C_i, L)
        x = self.conv_post(self.activation_post(x))  # (B, 1, T·hop)
        return torch.tanh(x) if self.final_tanh else x.clamp(-1.0, 1.0)


# ----------------------------------------------------------------------------------------------
# Checkpoints
# ----------------------------------------------------------------------------------------------
def fold_weight_norm(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Replace ``X.weight_g``/``X.weight_v`` (or torch's parametrization names) by ``X.weight``.

    Weight norm with dim 0: ``weight = g · v / ‖v‖`` with the norm over every axis but the first,
    for Conv1d and ConvTranspose1d alike. Plain ``X.weight`` entries pass through unchanged.
    """
    out: dict[str, torch.Tensor] = {}
    pairs: dict[str, dict[str, torch.Tensor]] = {}
    suffixes = {
        ".weight_g": "g",
        ".weight_v": "v",
        ".parametrizations.weight.original0": "g",
        ".parametrizations.weight.original1": "v",
    }
    for key, value in state.items():
        dotted = "." + key
        for suffix, part in suffixes.items():
            if dotted.endswith(suffix):
                pairs.setdefault(dotted[: -len(suffix)], {})[part] = value
                break
        else:
            out[key] = value
    for prefix, gv in pairs.items():
        if set(gv) != {"g", "v"}:
            raise KeyError(f"{prefix[1:] or 'weight'}: weight-norm pair incomplete (has {sorted(gv)})")
        v = gv["v"].float()
        norm = v.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *([1] * (v.ndim - 1)))  # (out, 1, 1)
        out[(prefix + ".weight")[1:]] = gv["g"].float().view_as(norm) * v / norm
    return out


def read_generator_state(path: str | Path) -> dict[str, torch.Tensor]:
    """Load ``{"generator": state_dict}`` from a release file, with one-line errors when it is not one."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, "vocoder checkpoint not found")
    from avflow_cli.torchfile import load_torch_file

    ckpt = load_torch_file(path, "vocoder checkpoint")  # weights only: never runs code
    if not isinstance(ckpt, Mapping) or CHECKPOINT_KEY not in ckpt or not isinstance(ckpt[CHECKPOINT_KEY], Mapping):
        keys = list(ckpt)[:5] if isinstance(ckpt, Mapping) else type(ckpt).__name__
        raise InputFileError(path, f"expected a dict with a {CHECKPOINT_KEY!r} state dict, found {keys}")
    return dict(ckpt[CHECKPOINT_KEY])


def load_state_strict(model: nn.Module, state: Mapping[str, torch.Tensor], path: str | Path) -> None:
    """``load_state_dict(strict=True)`` whose failures name the file and a few offending keys."""
    try:
        state = fold_weight_norm(state)
    except KeyError as err:
        raise InputFileError(path, f"malformed weights: {err.args[0]}") from None
    problem = state_dict_mismatch(model, state)
    if problem:
        raise InputFileError(path, f"weights do not match the architecture in its config (wrong model or config?): {problem}")
    expected = model.state_dict()
    model.load_state_dict({k: v.to(expected[k].dtype) for k, v in state.items()}, strict=True)


def freeze(model: nn.Module) -> nn.Module:
    """Eval mode and no gradients: the vocoders are inference-only here."""
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


# ----------------------------------------------------------------------------------------------
# HiFi-GAN V1
# ----------------------------------------------------------------------------------------------
def _lrelu(slope: float) -> ActFactory:
    return lambda _channels: nn.LeakyReLU(slope)


def build_hifigan(cfg: GeneratorConfig) -> Generator:
    """HiFi-GAN generator with the reference's leaky-ReLU placement."""
    return Generator(
        cfg,
        block_act=_lrelu(HIFIGAN_LRELU_SLOPE),
        post_act=nn.LeakyReLU(HIFIGAN_POST_LRELU_SLOPE),
        pre_up_act=_lrelu(HIFIGAN_LRELU_SLOPE),
    )


def load_hifigan(checkpoint: str | Path, config: str | Path | GeneratorConfig | None = None) -> Generator:
    """HiFi-GAN generator from a release ``generator_*.pth.tar`` (key ``generator``), loaded strictly.

    ``config`` defaults to ``config.json`` beside the checkpoint, else the V1 architecture.
    """
    checkpoint = Path(checkpoint)
    if config is None:
        side = checkpoint.with_name("config.json")
        cfg = GeneratorConfig.from_json(side) if side.is_file() else GeneratorConfig()
        source: Path = side if side.is_file() else checkpoint
    elif isinstance(config, GeneratorConfig):
        cfg, source = config, checkpoint
    else:
        cfg, source = GeneratorConfig.from_json(config), Path(config)
    cfg.check_mel_recipe(source)
    model = build_hifigan(cfg)
    load_state_strict(model, read_generator_state(checkpoint), checkpoint)
    return freeze(model)


def mel_to_model_input(mel: torch.Tensor) -> torch.Tensor:
    """(B, T, M) or (T, M) natural-log mel → (B, M, T) float32 as the generators take it."""
    x = torch.as_tensor(mel, dtype=torch.float32)
    if x.ndim == 2:
        x = x[None]
    if x.ndim != 3:
        raise ValueError(f"mel must be (B, T, {N_MELS}) or (T, {N_MELS}), got shape {tuple(x.shape)}")
    return x.transpose(1, 2).contiguous()  # (B, M, T)


__all__ = [
    "GeneratorConfig",
    "Generator",
    "ResBlock",
    "build_hifigan",
    "load_hifigan",
    "fold_weight_norm",
    "read_generator_state",
    "load_state_strict",
]
