"""Generation speed (AV-Flow §4.3, "inference time"): seconds to generate 20 s, per stage.

The paper reports the wall-clock time to synthesise 20 s of audio-visual output. avflow times
each stage on one 20 s input (``SEGMENT_SECONDS`` → ``SEGMENT_FRAMES`` = 1722 frames at FPS):
``t2t`` (text → tokens, only with ``--from-text``), ``avflow`` (flow-matching sampling of face,
head latent and mel), ``head_vae`` (latent → pose), ``vocoder`` (mel → waveform); ``total`` is
their sum. One untimed warm-up call per stage comes first (CUDA kernels, allocator); CUDA is
synchronised around each timed call. Timings read from another system's ``meta.json`` are
scaled linearly to 20 s (:func:`scale_to_segment`).
"""

from __future__ import annotations

import time
from typing import Any, Callable

import numpy as np

from avflow_cli.constants import FPS, SEGMENT_FRAMES, SEGMENT_SECONDS

SPEED_STAGES = ("t2t", "avflow", "head_vae", "vocoder")


def _sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def time_call(fn: Callable[[], Any], repeats: int = 1, warmup: bool = True) -> tuple[float, Any]:
    """Median wall-clock seconds of ``fn()`` over ``repeats`` calls (after one warm-up) and its last result."""
    if warmup:
        fn()
    times, out = [], None
    for _ in range(max(1, repeats)):
        _sync()
        start = time.perf_counter()
        out = fn()
        _sync()
        times.append(time.perf_counter() - start)
    return float(np.median(times)), out


def tile_to_segment(tokens: np.ndarray, frames: int = SEGMENT_FRAMES) -> np.ndarray:
    """Repeat (T, D) along time and cut to ``frames`` rows: a 20 s input from any clip."""
    reps = int(np.ceil(frames / max(len(tokens), 1)))
    return np.concatenate([tokens] * reps, axis=0)[:frames]


def measure_speed(
    model: Any,
    tokens: np.ndarray,
    *,
    head_vae: Any = None,
    vocoder: Any = None,
    t2t: Any = None,
    text: str | None = None,
    steps: int | None = None,
    repeats: int = 1,
    device: str = "cpu",
) -> dict[str, float]:
    """Seconds per stage to generate ``SEGMENT_SECONDS`` (20 s) of output; keys ⊆ SPEED_STAGES + total."""
    import torch

    from avflow_cli.models.inference import generate

    out: dict[str, float] = {}
    if t2t is not None and text:
        out["t2t"], _ = time_call(lambda: t2t.synthesize(text), repeats)
    seg = tile_to_segment(np.asarray(tokens, np.float32))  # (1722, 29)
    with torch.inference_mode():
        out["avflow"], gen = time_call(lambda: generate(model, seg, steps=steps, seed=0, num_samples=1), repeats)
        if head_vae is not None:
            out["head_vae"], _ = time_call(lambda: head_vae.decode_pose(gen["head"][0]), repeats)
        if vocoder is not None:
            mel = torch.as_tensor(gen["mel"][:1], dtype=torch.float32, device=device)  # (1, T, 80)
            out["vocoder"], _ = time_call(lambda: vocoder(mel), repeats)
    out["total"] = float(sum(v for k, v in out.items() if k in SPEED_STAGES))
    out["seconds_generated"] = len(seg) / FPS
    return out


def scale_to_segment(timings: dict[str, float], seconds_generated: float) -> dict[str, float]:
    """Stage timings of ``seconds_generated`` of output scaled linearly to 20 s."""
    if seconds_generated <= 0:
        return {}
    factor = SEGMENT_SECONDS / seconds_generated
    out = {k: float(v) * factor for k, v in timings.items() if k in SPEED_STAGES}
    out["total"] = float(sum(out.values()))
    return out
