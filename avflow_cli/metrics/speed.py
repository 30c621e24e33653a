"""Generation speed (AV-Flow §4.3, "inference time"): seconds to generate 20 s, per stage.

The paper reports the wall-clock time to synthesise 20 s of audio-visual output. avflow times
each stage through ``Synthesizer``, the path ``avflow synth`` takes, on one 20 s input
(``SEGMENT_SECONDS`` → ``SEGMENT_FRAMES`` = 1722 frames at FPS): ``t2t`` (text → tokens, only with
``--from-text``), ``avflow`` (flow-matching sampling of face, head latent and mel), ``head_vae``
(latent → pose), ``vocoder`` (mel → waveform); ``total`` is their sum. One untimed warm-up call
comes first (CUDA kernels, allocator); each stage's output reaches the host before its clock
stops. Timings read from another system's ``meta.json`` are scaled linearly to 20 s
(:func:`scale_to_segment`).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from avflow_cli.constants import FPS, SEGMENT_FRAMES, SEGMENT_SECONDS

if TYPE_CHECKING:  # pragma: no cover
    from avflow_cli.synth import Synthesizer

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
    synth: Synthesizer,
    tokens: np.ndarray,
    *,
    text: str | None = None,
    steps: int | None = None,
    repeats: int = 1,
) -> dict[str, float]:
    """Seconds per stage to generate ``SEGMENT_SECONDS`` (20 s) of output; keys ⊆ SPEED_STAGES + total.

    Timed through the one synthesis seam (docs/ARCHITECTURE.md §6): ``synth.synthesize_tokens`` on
    the tokens tiled to 20 s reports its own per-stage timings (AV-Flow sampling, head VAE when the
    synthesizer has one, vocoder), whose median over ``repeats`` calls after one warm-up is kept;
    ``t2t`` times ``synth.text_to_tokens(text)`` when a text is given.
    """
    out: dict[str, float] = {}
    if text:
        out["t2t"], _ = time_call(lambda: synth.text_to_tokens(text), repeats)
    seg = tile_to_segment(np.asarray(tokens, np.float32))  # (1722, 29)
    runs: list[dict[str, float]] = []

    def run() -> None:
        runs.append(synth.synthesize_tokens(seg, steps=steps, seed=0).timings)

    time_call(run, repeats)
    timed = runs[1:]  # the first was the warm-up
    for stage in SPEED_STAGES:
        if stage != "t2t" and all(stage in t for t in timed):
            out[stage] = float(np.median([t[stage] for t in timed]))
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
