"""Head pose as the model sees it: unit quaternion (w, x, y, z) + translation, shape (N, 7).

Capture systems give rotation matrices; the model wants a smooth 4-d rotation code. A
quaternion q and −q are the same rotation, so the sign is chosen per frame to stay in the
hemisphere of the previous frame: the sequence is continuous and interpolates without flips.
Matrices are checked for orthonormality: small numerical drift is projected back onto SO(3)
with an SVD; anything further off (a scaled, sheared or mirrored matrix) is a user error.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from avflow_cli.constants import HEAD_POSE_DIM
from avflow_cli.errors import AvflowError, InputFileError
from avflow_cli.gaps import nearest_index

ORTHO_REPAIR_TOL = 0.05  # max |RᵀR − I| entry still re-orthonormalised; larger is an error


def _error(source: str | Path | None, problem: str) -> AvflowError:
    return InputFileError(source, problem) if source is not None else AvflowError(problem)


def orthonormalize(rot: np.ndarray, *, tol: float = ORTHO_REPAIR_TOL, source: str | Path | None = None) -> np.ndarray:
    """Project (N, 3, 3) matrices onto SO(3); raise for matrices off by more than ``tol``.

    NaN rows (lost tracking) pass through unchanged; callers mask them.
    """
    rot = np.asarray(rot, dtype=np.float64)
    if rot.ndim != 3 or rot.shape[1:] != (3, 3):
        raise _error(source, f"rotation matrices must be (N, 3, 3), got {rot.shape}")
    if np.isinf(rot).any():
        raise _error(source, "rotation matrices contain Inf")
    ok = np.isfinite(rot).all(axis=(1, 2))  # (N,)
    good = rot[ok]  # (M, 3, 3)
    err = np.abs(np.einsum("nji,njk->nik", good, good) - np.eye(3)).max(axis=(1, 2))  # (M,)
    det = np.linalg.det(good)  # (M,)
    bad = (err > tol) | (det <= 0)
    if bad.any():
        first = int(np.flatnonzero(ok)[np.argmax(bad)])
        what = "a reflection (det < 0)" if det[np.argmax(bad)] <= 0 else f"|RᵀR − I| = {err[np.argmax(bad)]:.3g} > {tol}"
        raise _error(source, f"{int(bad.sum())} rotation matrices are not orthonormal (first at frame {first}: {what})")
    u, _, vt = np.linalg.svd(good)  # (M, 3, 3) each
    fixed = u @ vt  # nearest orthogonal matrix, det +1 since det(good) > 0 and drift is small
    out = rot.copy()
    out[ok] = fixed
    return out


def make_continuous(quat: np.ndarray) -> np.ndarray:
    """Flip signs so consecutive quaternions have a non-negative dot product. (N, 4) -> (N, 4)."""
    q = np.array(quat, dtype=np.float64)
    if len(q) == 0:
        return q
    if q[0, 0] < 0:  # canonical start: w >= 0
        q[0] = -q[0]
    dots = np.einsum("ni,ni->n", q[1:], q[:-1])  # (N-1,)
    flips = np.concatenate([[1.0], np.where(dots < 0, -1.0, 1.0)])  # (N,) sign change vs previous
    return q * np.cumprod(flips)[:, None]


def rotmat_to_quat(rot: np.ndarray, *, continuous: bool = True) -> np.ndarray:
    """Rotation matrices (N, 3, 3) → unit quaternions (N, 4) in w, x, y, z order.

    Shepperd's method: pick the largest of (w, x, y, z)² as the pivot, so the division is
    always by a number ≥ 1/2 and the result is accurate for every rotation.
    """
    r = np.asarray(rot, dtype=np.float64)
    tr = r[:, 0, 0] + r[:, 1, 1] + r[:, 2, 2]  # (N,)
    diag = np.stack([tr, r[:, 0, 0], r[:, 1, 1], r[:, 2, 2]], 1)  # (N, 4)
    pivot = np.argmax(diag, axis=1)  # (N,)
    q = np.empty((len(r), 4))
    # pivot w
    s = np.sqrt(np.maximum(1.0 + tr, 1e-12)) * 2  # (N,) = 4w
    q_w = np.stack([0.25 * s, (r[:, 2, 1] - r[:, 1, 2]) / s, (r[:, 0, 2] - r[:, 2, 0]) / s, (r[:, 1, 0] - r[:, 0, 1]) / s], 1)
    s = np.sqrt(np.maximum(1.0 + r[:, 0, 0] - r[:, 1, 1] - r[:, 2, 2], 1e-12)) * 2  # = 4x
    q_x = np.stack([(r[:, 2, 1] - r[:, 1, 2]) / s, 0.25 * s, (r[:, 0, 1] + r[:, 1, 0]) / s, (r[:, 0, 2] + r[:, 2, 0]) / s], 1)
    s = np.sqrt(np.maximum(1.0 - r[:, 0, 0] + r[:, 1, 1] - r[:, 2, 2], 1e-12)) * 2  # = 4y
    q_y = np.stack([(r[:, 0, 2] - r[:, 2, 0]) / s, (r[:, 0, 1] + r[:, 1, 0]) / s, 0.25 * s, (r[:, 1, 2] + r[:, 2, 1]) / s], 1)
    s = np.sqrt(np.maximum(1.0 - r[:, 0, 0] - r[:, 1, 1] + r[:, 2, 2], 1e-12)) * 2  # = 4z
    q_z = np.stack([(r[:, 1, 0] - r[:, 0, 1]) / s, (r[:, 0, 2] + r[:, 2, 0]) / s, (r[:, 1, 2] + r[:, 2, 1]) / s, 0.25 * s], 1)
    for k, cand in enumerate((q_w, q_x, q_y, q_z)):
        sel = pivot == k
        q[sel] = cand[sel]
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    return make_continuous(q) if continuous else q


def quat_to_rotmat(quat: np.ndarray) -> np.ndarray:
    """Quaternions (..., 4) wxyz → rotation matrices (..., 3, 3), float64.

    Normalised first; a zero or non-finite quaternion gives the identity, so a lost frame never
    turns into NaN pixels or velocities downstream. The one implementation: rendering, the demo
    avatar and the beat metric use it.
    """
    q = np.asarray(quat, dtype=np.float64)
    norm = np.linalg.norm(q, axis=-1, keepdims=True)  # (..., 1)
    bad = ~np.isfinite(norm) | (norm < 1e-8)
    q = np.where(bad, np.array([1.0, 0.0, 0.0, 0.0]), q / np.where(bad, 1.0, norm))  # (..., 4)
    w, x, y, z = np.moveaxis(q, -1, 0)
    rot = np.stack(
        [
            1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
            2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
            2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
        ],
        axis=-1,
    )  # (..., 9)
    return rot.reshape(q.shape[:-1] + (3, 3))


def split_rt(pose: np.ndarray, trans: np.ndarray | None = None, *, source: str | Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Accept (N, 3, 3) rotations + (N, 3) translations, or (N, 3|4, 4) [R|t] matrices."""
    pose = np.asarray(pose, dtype=np.float64)
    if pose.ndim == 3 and pose.shape[1] in (3, 4) and pose.shape[2] == 4:
        return pose[:, :3, :3], pose[:, :3, 3]
    if trans is None:
        raise _error(source, f"expected (N, 3|4, 4) [R|t] matrices or rotations with a translation file, got {pose.shape}")
    trans = np.asarray(trans, dtype=np.float64)
    if trans.ndim != 2 or trans.shape[1] != 3:
        raise _error(source, f"translations must be (N, 3), got {trans.shape}")
    return pose, trans


def headpose_from_rt(rot: np.ndarray, trans: np.ndarray, *, tol: float = ORTHO_REPAIR_TOL, source: str | Path | None = None) -> np.ndarray:
    """Rotations (N, 3, 3) + translations (N, 3) → head pose (N, 7): quaternion wxyz + translation."""
    return headpose_and_tracked(rot, trans, tol=tol, source=source)[0]


def headpose_and_tracked(
    rot: np.ndarray, trans: np.ndarray, *, tol: float = ORTHO_REPAIR_TOL, source: str | Path | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Rotations (N, 3, 3) + translations (N, 3) → head pose (N, 7) and a tracked mask (N,).

    Frames with NaN in R or t are lost tracking: they get the nearest tracked frame's pose and
    False in the mask. Inf, wrong shapes, mismatched lengths or non-orthonormal matrices raise.
    """
    rot = orthonormalize(rot, tol=tol, source=source)
    trans = np.asarray(trans, dtype=np.float64)
    if len(rot) != len(trans):
        raise _error(source, f"{len(rot)} rotations but {len(trans)} translations")
    if np.isinf(trans).any():
        raise _error(source, "translations contain Inf")
    tracked = np.isfinite(rot).all(axis=(1, 2)) & np.isfinite(trans).all(axis=1)  # (N,)
    if not tracked.any():
        raise _error(source, "no frame has a finite head pose")
    idx = nearest_index(tracked)  # (N,)
    quat = rotmat_to_quat(rot[idx])  # (N, 4)
    pose = np.concatenate([quat, trans[idx]], axis=1).astype(np.float32)  # (N, 7)
    assert pose.shape[1] == HEAD_POSE_DIM
    return pose, tracked
