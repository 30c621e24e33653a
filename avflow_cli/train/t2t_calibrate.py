"""Duration calibration: text-to-tokens speaks at the pace of the speech it was trained on.

The duration predictor regresses log-durations (``models/text2tokens/losses.duration_loss``), so
``exp`` of its output estimates each symbol's *geometric* mean duration, which is shorter than the
arithmetic mean whenever durations vary; rounding short symbols to whole frames takes a little
more. The shipped text-to-tokens models spoke 0.86–0.88 of their training speech's frames, and
that haste cost intelligibility (docs/quality.md, "Duration calibration"). :func:`calibrate` measures the
bias on utterances with known tokens and returns the one factor (``T2TConfig.duration_scale``)
that makes the rounded predicted frames add up to the true ones; :func:`calibrate_model_dir`
stores it in a model directory, which ``avflow train t2t`` does at the end of every run and
``avflow train calibrate-t2t`` for a model trained before.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from avflow_cli.data.t2t_dataset import Utterance, collate_utterances, load_utterances
from avflow_cli.errors import AvflowError
from avflow_cli.models.registry import load_t2t, set_model_field
from avflow_cli.models.text2tokens.alignment import round_durations
from avflow_cli.train.common import IDS_CACHE

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
    return int(round_durations(durations * scale, rounding).sum())


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


def duration_ratio(model: torch.nn.Module, utts: Sequence[Utterance], batch_size: int = 16) -> float:
    """Frames the raw duration predictor gives ``utts`` over their true frames (1 = their pace;
    below 1 the model speaks too fast until calibrated)."""
    durations, target = predicted_durations(model, utts, batch_size)
    return frame_counts(durations, 1.0, model.config.duration_rounding) / target


def calibrate_model_dir(model_dir: str | Path, data: str | Path, batch_size: int = 16) -> DurationCalibration:
    """Measure a text-to-tokens model's duration bias on the utterances of ``data`` it was trained
    on (those whose text its ``text_ids.json`` holds; all of them when it has none) with the
    weights synthesis uses, and store the factor as ``model.duration_scale`` in its config.json."""
    model = load_t2t(model_dir)  # first: a folder that is not a model fails before the data is read
    ids_file = Path(model_dir) / IDS_CACHE
    if ids_file.is_file():  # the symbol ids it trained on: nothing phonemised again, foreign texts left out
        utts = load_utterances(data, cache=ids_file, cached_only=True)
        if not utts:
            raise AvflowError(f"{data}: none of its utterances is one {model_dir} was trained on ({IDS_CACHE}); "
                              "calibrate on the model's own training folder")
    else:
        utts = load_utterances(data)
    result = calibrate(model, utts, batch_size)
    set_model_field(model_dir, "duration_scale", result.scale)
    return result
