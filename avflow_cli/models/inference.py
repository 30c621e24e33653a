"""Sampling AV-Flow: tokens at FPS in, denormalised face codes, head latents and mel out.

Any length works in one pass: attention is banded (linear in T) and RoPE tables are built for
the length at hand. Guidance channels the model has but the caller does not give are zero,
the value guidance dropout taught the model to read as "no guidance".
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable

import numpy as np
import torch

from avflow_cli.errors import AvflowError
from avflow_cli.models.config import check_temperature
from avflow_cli.models.flow import euler_sample


def build_cond(model: torch.nn.Module, tokens: np.ndarray, p_tokens: np.ndarray | None, p_smirk: np.ndarray | None) -> torch.Tensor:
    """Normalised cond (1, T, C) in the model's channel order [tokens | p_tokens | p_smirk].

    The avatar's tokens are scaled by ``model.token_gain`` (1 = as trained; every sampling path,
    offline, streaming and live, builds its cond here, so all of them speak alike)."""
    cfg, norm = model.config, model.normalizer
    tokens = np.asarray(tokens, np.float32)
    if tokens.ndim != 2 or tokens.shape[1] != cfg.token_dim:
        raise AvflowError(f"tokens must be (T, {cfg.token_dim}) at FPS, got {tokens.shape}")
    T = tokens.shape[0]
    if T < 1:
        raise AvflowError("tokens are empty: nothing to generate")
    parts = [norm.normalize("tokens", tokens) * np.float32(cfg.token_gain)]
    for name, arr, dim, enabled in (
        ("p_tokens", p_tokens, cfg.token_dim, cfg.participant_tokens),
        ("p_smirk", p_smirk, cfg.participant_visual_dim, cfg.participant_visual_dim > 0),
    ):
        if not enabled:
            if arr is not None:
                raise AvflowError(f"this model was trained without {name} guidance; do not pass {name}")
            continue
        if arr is None:
            parts.append(np.zeros((T, dim), np.float32))
            continue
        arr = np.asarray(arr, np.float32)
        if arr.ndim != 2 or arr.shape[1] != dim:
            raise AvflowError(f"{name} must be (T, {dim}), got {arr.shape}")
        if len(arr) < T:  # guidance shorter than the tokens: pad with "no guidance" in normalised space
            arr_n = np.concatenate([norm.normalize(name, arr), np.zeros((T - len(arr), dim), np.float32)])
        else:
            arr_n = norm.normalize(name, arr[:T])
        parts.append(arr_n)
    cond = np.concatenate(parts, axis=1).astype(np.float32)  # (T, C)
    return torch.from_numpy(cond)[None]  # (1, T, C)


def generate(
    model: torch.nn.Module,
    tokens: np.ndarray,
    *,
    p_tokens: np.ndarray | None = None,
    p_smirk: np.ndarray | None = None,
    steps: int | None = None,
    seed: int = 0,
    num_samples: int = 1,
    bf16: bool = False,
    temperature: float | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, np.ndarray]:
    """Sample face, head latent and mel for ``tokens`` (T, 29) at FPS.

    Returns ``{"face": (S, T, F), "head": (S, T, 8), "mel": (S, T, 80)}`` float32, denormalised
    (mel is natural-log mel, our recipe). ``steps`` defaults to the config's Euler steps; the same
    ``seed`` gives the same samples; ``temperature`` scales the starting noise (default: the
    config's); ``bf16`` runs the network under bfloat16 autocast;
    ``progress(done, steps)`` is called after each Euler step (long sampling shows progress).
    """
    if model.normalizer is None:
        raise AvflowError("model has no normalisation; load it with avflow_cli.load_model")
    cfg = model.config
    steps = cfg.steps if steps is None else int(steps)  # 0 is an error, not "the default"
    temperature = cfg.temperature if temperature is None else check_temperature(temperature)
    if steps < 1 or num_samples < 1:
        raise AvflowError("steps and num_samples must be >= 1")
    device = next(model.parameters()).device
    cond = build_cond(model, tokens, p_tokens, p_smirk).to(device).expand(num_samples, -1, -1)  # (S, T, C)
    T = cond.shape[1]
    gen = torch.Generator(device="cpu").manual_seed(int(seed))
    x0 = (torch.randn(num_samples, T, cfg.x_dim, generator=gen) * temperature).to(device)  # (S, T, X)
    if bf16 and device.type == "cpu" and not cpu_has_fast_bf16():
        warnings.warn("bf16 on this CPU is emulated (no AVX-512/AMX) and far slower than fp32; use bf16=False",
                      stacklevel=2)
    was_training = model.training
    model.eval()
    try:
        with sampling_context(device.type, bf16):
            net = model if progress is None else _reporting(model, steps, progress)
            x1 = euler_sample(net, x0, cond, steps).float()  # (S, T, X)
    finally:
        model.train(was_training)
    face, head, mel = x1.split([cfg.face_dim, cfg.head_dim, cfg.mel_dim], dim=-1)
    norm = model.normalizer
    return {
        "face": norm.denormalize("face", face).cpu().numpy(),
        "head": norm.denormalize("head", head).cpu().numpy(),
        "mel": norm.denormalize("mel", mel).cpu().numpy(),
    }


def sampling_context(device_type: str, bf16: bool) -> contextlib.ExitStack:
    """The region one sampling loop runs in: inference mode (fp32), or no_grad + bf16 autocast.

    Autocast caches each weight's bf16 copy for its whole region, but not under inference_mode,
    so bf16 uses no_grad: the weights are cast once per sampling instead of once per Euler step.
    """
    stack = contextlib.ExitStack()
    if not bf16:
        stack.enter_context(torch.inference_mode())
        return stack
    stack.enter_context(torch.no_grad())
    stack.enter_context(torch.autocast(device_type, dtype=torch.bfloat16))
    return stack


def _reporting(model: torch.nn.Module, steps: int, progress: Callable[[int, int], None]) -> Callable[..., torch.Tensor]:
    """``model`` as a callable that reports ``progress(done, steps)`` after each evaluation (one per Euler step)."""
    done = 0

    def step(x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        nonlocal done
        v = model(x, t, cond)  # (S, T, X)
        done += 1
        progress(done, steps)
        return v

    return step


def cpu_has_fast_bf16() -> bool:
    """Whether this CPU's PyTorch kernels can run bf16 natively (AVX-512 family or AMX)."""
    return torch.backends.cpu.get_cpu_capability().upper().startswith(("AVX512", "AMX"))
