"""Diversity of generated motion (AV-Flow §4.1, Table 1 "Div_e", "Div_h").

The paper reports diversity as the standard deviation of the generated expressions and head
poses across the samples of the test set. avflow pools every generated frame of every test clip
into one set of N samples and reports the per-dimension standard deviation averaged over
dimensions:

    Div = (1/D) Σ_d std_n(x[n, d])        (population std, ddof = 0)

Related published code measures the same spread differently: Audio2Photoreal's
``utils/eval.py`` takes the mean L2 distance between 10 000 random pairs of pooled generated
frames ("var_g"), Learning to Listen the variance over time. The standard deviation is the
paper's wording; both grow with the same per-dimension spread (E‖x − x′‖² = 2 Σ_d var_d).

* **Div_e** on the face expression codes (D = F, code units).
* **Div_h** on head rotation, as the rotation vector (axis·angle) in **degrees**, D = 3; the
  translation's diversity (mm) is reported alongside as ``Div_h_trans``. Rotation and
  translation are kept apart because their units cannot be averaged meaningfully.

Higher is more diverse; compare with the same number on the ground truth (``eval`` reports both).
Per-clip sums (:class:`MomentStats`) let the test set be accumulated clip by clip and cached.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class MomentStats:
    """Per-dimension running sums: count n, Σx (D,), Σx² (D,), float64."""

    n: int
    s1: np.ndarray
    s2: np.ndarray

    @classmethod
    def of(cls, x: np.ndarray) -> "MomentStats":
        x = np.asarray(x, dtype=np.float64)  # (N, D)
        return cls(int(x.shape[0]), x.sum(0), np.square(x).sum(0))

    def __add__(self, other: "MomentStats") -> "MomentStats":
        return MomentStats(self.n + other.n, self.s1 + other.s1, self.s2 + other.s2)

    @property
    def std(self) -> np.ndarray:
        """Population standard deviation per dimension (D,)."""
        if self.n == 0:
            return np.full_like(self.s1, np.nan)
        mean = self.s1 / self.n
        return np.sqrt(np.clip(self.s2 / self.n - mean**2, 0.0, None))

    @property
    def diversity(self) -> float:
        return float(np.mean(self.std))


def diversity(samples: np.ndarray) -> float:
    """Mean over dimensions of the per-dimension std across samples; (N, D) -> float."""
    return MomentStats.of(samples).diversity


def quat_to_rotvec_deg(quat: np.ndarray) -> np.ndarray:
    """Unit quaternions (w, x, y, z) → rotation vectors in degrees. shape (T, 4) -> (T, 3).

    Uses the w ≥ 0 representative, so q and −q give the same vector (angle in [0°, 180°]).
    """
    q = np.asarray(quat, dtype=np.float64)
    q = q / np.linalg.norm(q, axis=1, keepdims=True).clip(1e-12)  # (T, 4)
    q = np.where(q[:, :1] < 0, -q, q)
    w, v = q[:, 0], q[:, 1:]  # (T,), (T, 3)
    sin_half = np.linalg.norm(v, axis=1)  # (T,)
    angle = 2.0 * np.arctan2(sin_half, w)  # (T,) radians
    scale = np.where(sin_half > 1e-12, angle / np.maximum(sin_half, 1e-12), 2.0)  # small-angle limit
    return np.degrees(v * scale[:, None])  # (T, 3)


def div_e(face_codes: np.ndarray) -> float:
    """Div_e: diversity of generated face codes pooled over the test set, (N, F) -> float."""
    return diversity(face_codes)


def div_h(head_pose: np.ndarray) -> float:
    """Div_h: diversity of generated head rotation (rotation vector, degrees); head_pose (N, 7)."""
    return diversity(quat_to_rotvec_deg(np.asarray(head_pose)[:, :4]))
