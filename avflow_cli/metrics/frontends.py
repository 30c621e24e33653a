"""Scores of the front ends against real ground truth (docs/real_data.md, benchmarks/real_frontends.py).

- Voice activity: frame F1 of speech and of silence, per channel, against TextGrid intervals
  (:func:`speech_silence_scores`, on a 10 ms grid, built on :func:`avflow_cli.audio.vad.frame_scores`).
- Alignment: absolute boundary error in ms of timed words or phones against a reference tier,
  over the labels both sides share in order (:func:`boundary_errors`: a longest-common-subsequence
  match whose pairs must overlap in time, so a recogniser's substituted or missing words, and a
  "the" paired with another "the" seconds away, are left out and counted as unmatched).
- Faces: landmark error normalised by the inter-ocular distance (outer eye corners, the 300-W
  convention: :func:`landmark_nme`), and for video the share of frames with a face, landmark
  jitter (RMS second difference ÷ inter-ocular distance) and head-pose smoothness (RMS second
  difference of pitch/yaw/roll in degrees): :func:`track_stats`.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from avflow_cli.audio.vad import EVAL_FRAME_S, frame_scores, segments_to_mask
from avflow_cli.errors import AvflowError

Timed = tuple[str, float, float]  # (label, start_s, end_s)
OUTER_EYE_CORNERS = (36, 45)  # 68-point layout (iBUG 300-W), 0-based


def speech_silence_scores(pred: Sequence[tuple[float, float]], truth: Sequence[tuple[float, float]],
                          duration_s: float, frame_s: float = EVAL_FRAME_S) -> dict[str, float]:
    """Frame F1 of speech and of silence (and accuracy) of predicted vs true speech intervals."""
    if not duration_s > 0:
        raise AvflowError(f"cannot score voice activity over a duration of {duration_s} s")
    p = segments_to_mask(list(pred), duration_s, frame_s)
    t = segments_to_mask(list(truth), duration_s, frame_s)
    speech, silence = frame_scores(p, t), frame_scores(~p, ~t)
    return {"speech_f1": speech["f1"], "silence_f1": silence["f1"], "speech_precision": speech["precision"],
            "speech_recall": speech["recall"], "accuracy": speech["accuracy"]}


def plain_label(label: str) -> str:
    """Labels compared across tools: lower case, ARPABET stress digits and punctuation dropped."""
    return re.sub(r"[^a-z']", "", re.sub(r"\d", "", label.lower()))


@dataclass
class BoundaryErrors:
    """Signed start and end errors (s) of the matched items; ``reference`` items were there to match."""

    start: np.ndarray  # (M,) hypothesis − reference
    end: np.ndarray  # (M,)
    reference: int

    @property
    def matched(self) -> int:
        return len(self.start)

    def summary(self) -> dict[str, float]:
        """Median and mean |error| in ms over all boundaries, shares within 20/50 ms, match rate."""
        err = np.abs(np.concatenate([self.start, self.end])) * 1000.0
        nan = float("nan")
        return {"matched": float(self.matched), "reference": float(self.reference),
                "match_rate": self.matched / self.reference if self.reference else nan,
                "median_ms": float(np.median(err)) if err.size else nan,
                "mean_ms": float(err.mean()) if err.size else nan,
                "within_20ms": float((err <= 20).mean()) if err.size else nan,
                "within_50ms": float((err <= 50).mean()) if err.size else nan}

    def __add__(self, other: "BoundaryErrors") -> "BoundaryErrors":
        return BoundaryErrors(np.concatenate([self.start, other.start]), np.concatenate([self.end, other.end]),
                              self.reference + other.reference)


def boundary_errors(hyp: Sequence[Timed], ref: Sequence[Timed], label: Callable[[str], str] = plain_label) -> BoundaryErrors:
    """Boundary errors of ``hyp`` against ``ref`` over their longest common label subsequence,
    keeping the pairs whose intervals overlap. Items whose label is empty after ``label``
    (silences) are ignored on both sides.
    """
    h = [(label(n), float(s), float(e)) for n, s, e in hyp]
    r = [(label(n), float(s), float(e)) for n, s, e in ref]
    h, r = [x for x in h if x[0]], [x for x in r if x[0]]
    matcher = difflib.SequenceMatcher(a=[x[0] for x in h], b=[x[0] for x in r], autojunk=False)
    pairs = [(block.a + k, block.b + k) for block in matcher.get_matching_blocks() for k in range(block.size)]
    pairs = [(i, j) for i, j in pairs if min(h[i][2], r[j][2]) > max(h[i][1], r[j][1])]  # they overlap in time
    start = np.array([h[i][1] - r[j][1] for i, j in pairs], dtype=np.float64)
    end = np.array([h[i][2] - r[j][2] for i, j in pairs], dtype=np.float64)
    return BoundaryErrors(start, end, len(r))


def inter_ocular(points: np.ndarray) -> np.ndarray:
    """Outer-eye-corner distance of (..., 68, 2) landmarks → (...)."""
    p = np.asarray(points, dtype=np.float64)
    a, b = OUTER_EYE_CORNERS
    return np.linalg.norm(p[..., b, :] - p[..., a, :], axis=-1)


def landmark_nme(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Mean point-to-point error ÷ the true inter-ocular distance, per face. (N, 68, 2) ×2 → (N,)"""
    pred, truth = np.asarray(pred, np.float64), np.asarray(truth, np.float64)
    if pred.shape != truth.shape or pred.shape[-2:] != (68, 2):
        raise AvflowError(f"landmark error needs two (N, 68, 2) arrays, got {pred.shape} and {truth.shape}")
    return np.linalg.norm(pred - truth, axis=-1).mean(axis=-1) / inter_ocular(truth)


def _second_difference(x: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """x[t+1] − 2x[t] + x[t−1] where all three frames are valid. (N, ...) → (K, ...)"""
    ok = valid[2:] & valid[1:-1] & valid[:-2]
    return (x[2:] - 2 * x[1:-1] + x[:-2])[ok]


def track_stats(points: np.ndarray, valid: np.ndarray, angles_rad: np.ndarray | None = None) -> dict[str, float]:
    """Coverage, landmark jitter and head-pose smoothness of a tracked video.

    points (N, 68, 2) px, valid (N,) bool, angles_rad (N, 3) pitch/yaw/roll (optional).
    jitter: RMS over valid triples of the landmark second difference ÷ inter-ocular distance (a
    face held still gives 0; real motion adds to it, so compare trackers on the same video).
    pose_accel_deg: RMS second difference of the angles in degrees per frame².
    """
    pts, ok = np.asarray(points, np.float64), np.asarray(valid, bool)
    if len(pts) != len(ok) or len(ok) == 0:
        raise AvflowError(f"track stats need as many flags as frames, got {len(pts)} frames, {len(ok)} flags")
    out = {"frames": float(len(ok)), "coverage": float(ok.mean())}
    acc = _second_difference(pts, ok)  # (K, 68, 2)
    iod = inter_ocular(pts[1:-1][ok[2:] & ok[1:-1] & ok[:-2]])  # (K,)
    per_frame = np.sqrt((acc ** 2).sum(-1).mean(-1)) / np.maximum(iod, 1e-6) if acc.size else np.zeros(0)
    out["jitter"] = float(np.sqrt((per_frame ** 2).mean())) if per_frame.size else float("nan")
    if angles_rad is not None:
        acc_a = _second_difference(np.degrees(np.asarray(angles_rad, np.float64)), ok)  # (K, 3)
        out["pose_accel_deg"] = float(np.sqrt((acc_a ** 2).mean())) if acc_a.size else float("nan")
    return out
