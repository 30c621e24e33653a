"""Duration calibration: text-to-tokens speaks at the pace of the speech it was trained on.

The duration predictor regresses log-durations (``models/text2tokens/losses.duration_loss``), so
``exp`` of its output estimates each symbol's *geometric* mean duration, which is shorter than the
arithmetic mean whenever durations vary; rounding short symbols to whole frames takes a little
more. The shipped text-to-tokens models spoke 0.86–0.88 of their training speech's frames, and
that haste cost intelligibility (docs/quality.md, "Duration calibration"). :func:`calibrate` measures the
bias on utterances with known tokens and returns the one factor (``T2TConfig.duration_scale``)
that makes the rounded predicted frames add up to the true ones; ``avflow train t2t`` stores it
at the end of every run.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from avflow_cli.data.t2t_dataset import Utterance, collate_utterances
from avflow_cli.errors import AvflowError

SCALE_RANGE = (1 / 16, 16.0)  # a bias outside this is a broken model or data, not something to correct
BISECTION_STEPS = 40


@dataclass(frozen=True)
class DurationCalibration:
    """What :func:`calibrate` found: the factor and the frame ratios before and after it."""

    scale: float  # T2TConfig.duration_scale
    ratio_before: float  # predicted / true frames with scale 1
    ratio_after: float  # predicted / true frames with ``scale``
    utterances: int


def frame_counts(durations: torch.Tensor, scale: float, rounding: str) -> int:
    """Total frames of per-symbol durations ``durations`` (1-D) times ``scale``, rounded per symbol
    as the model rounds them at synthesis (``round`` or ``ceil``)."""
    scaled = durations * scale
    return int((torch.ceil(scaled) if rounding == "ceil" else torch.round(scaled)).sum())


@torch.no_grad()
def predicted_durations(model: torch.nn.Module, utts: Sequence[Utterance], batch_size: int = 16
                        ) -> tuple[torch.Tensor, int]:
    """Every real symbol's unscaled predicted duration in frames (1-D, all utterances together)
    and the utterances' true total frames (as training aligns them: at least one per symbol)."""
    was_training = model.training
    model.eval()
    parts, true_frames = [], 0
    try:
        for s in range(0, len(utts), batch_size):
            batch = collate_utterances(list(utts[s : s + batch_size]))
            device = model.mean.device
            _, logw, x_mask = model.encoder(batch["x"].to(device), batch["x_lengths"].to(device))  # (B, 1, N) ×2
            parts.append(torch.exp(logw)[x_mask.bool()].float().cpu())
            true_frames += int(batch["y_lengths"].sum())
    finally:
        model.train(was_training)
    return torch.cat(parts), true_frames


def calibrate(model: torch.nn.Module, utts: Sequence[Utterance], batch_size: int = 16) -> DurationCalibration:
    """The ``duration_scale`` that makes ``model`` speak ``utts`` in their true number of frames.

    Bisection on the rounded total (monotone in the scale), so rounding's own bias is included."""
    if not utts:
        raise AvflowError("duration calibration needs at least one utterance with tokens")
    durations, target = predicted_durations(model, utts, batch_size)
    rounding = model.config.duration_rounding
    lo, hi = SCALE_RANGE
    if not (frame_counts(durations, lo, rounding) <= target <= frame_counts(durations, hi, rounding)):
        raise AvflowError(f"text-to-tokens predicts {frame_counts(durations, 1.0, rounding)} frames for "
                          f"{target} true ones: a bias beyond ×{lo:g}–×{hi:g}, not calibrated (is the model trained?)")
    for _ in range(BISECTION_STEPS):
        mid = math.sqrt(lo * hi)
        if frame_counts(durations, mid, rounding) < target:
            lo = mid
        else:
            hi = mid
    scale = hi if abs(frame_counts(durations, hi, rounding) - target) <= abs(frame_counts(durations, lo, rounding) - target) else lo
    return DurationCalibration(scale=round(scale, 4), ratio_before=frame_counts(durations, 1.0, rounding) / target,
                               ratio_after=frame_counts(durations, round(scale, 4), rounding) / target,
                               utterances=len(utts))
