"""Lip-closure and smile F1 (AV-Flow §4.1, Tables 1-3: "F1 lips", "F1 smiles").

A frame is a *lip closure* when the decoded inner-lip distance is below a threshold, and a
*smile* when the decoded mouth-corner distance is above one. Ground-truth events are the
positives: with TP frames closed in both, FP closed only in the generated sequence and FN closed
only in the truth,

    F1 = 2·TP / (2·TP + FP + FN)

Frames are pooled over the whole test set before F1 is taken (counts are summed per clip), so
short clips count by their length and clips without any closure do not make F1 undefined.
F1 is NaN only when neither sequence has a single positive frame anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class F1Counts:
    """Confusion counts of a per-frame binary event; add them across clips, then take ``f1``."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0

    def __add__(self, other: "F1Counts") -> "F1Counts":
        return F1Counts(self.tp + other.tp, self.fp + other.fp, self.fn + other.fn, self.tn + other.tn)

    @property
    def f1(self) -> float:
        denom = 2 * self.tp + self.fp + self.fn
        return float("nan") if denom == 0 else 2.0 * self.tp / denom

    def to_dict(self) -> dict[str, int]:
        return {"tp": self.tp, "fp": self.fp, "fn": self.fn, "tn": self.tn}


def event_counts(generated: np.ndarray, truth: np.ndarray) -> F1Counts:
    """Confusion counts of boolean per-frame events; shape (T,) each, truncated to the shorter."""
    n = min(len(generated), len(truth))
    g = np.asarray(generated[:n], dtype=bool)
    t = np.asarray(truth[:n], dtype=bool)
    return F1Counts(
        tp=int(np.sum(g & t)), fp=int(np.sum(g & ~t)), fn=int(np.sum(~g & t)), tn=int(np.sum(~g & ~t))
    )


def lip_closures(lip_distance: np.ndarray, threshold: float) -> np.ndarray:
    """Per-frame lip closure: inner-lip distance < ``threshold``. shape (T,) -> (T,) bool."""
    return np.asarray(lip_distance) < threshold


def smiles(corner_distance: np.ndarray, threshold: float) -> np.ndarray:
    """Per-frame smile: mouth-corner distance > ``threshold``. shape (T,) -> (T,) bool."""
    return np.asarray(corner_distance) > threshold


def f1_lips(gen_lip_distance: np.ndarray, true_lip_distance: np.ndarray, threshold: float) -> float:
    """F1 of generated vs ground-truth lip closures on one sequence (AV-Flow Table 1, "F1 lips")."""
    return event_counts(lip_closures(gen_lip_distance, threshold), lip_closures(true_lip_distance, threshold)).f1


def f1_smiles(gen_corner_distance: np.ndarray, true_corner_distance: np.ndarray, threshold: float) -> float:
    """F1 of generated vs ground-truth smiles on one sequence (AV-Flow Table 1, "F1 smiles")."""
    return event_counts(smiles(gen_corner_distance, threshold), smiles(true_corner_distance, threshold)).f1
