"""Saved face and head motion (``motion.npz``): what ``avflow render`` reads.

The layout is the one ``avflow synth`` writes and ``avflow eval`` reads for any system (the
GEN layout, :mod:`avflow_cli.metrics.generated`)::

    face        (T, F) float   face (expression) codes — required
    fps         scalar         their frame rate (default: avflow's 86.13 Hz)
    head_pose   (T, 7) float   optional: unit quaternion (w, x, y, z) + translation in mm,
                               the head → camera transform
    head_R, head_t             optional alternative: (T, 3, 3) rotations and (T, 3)
                               translations (the release's names for the same transform)

Without a head pose the avatar stays at the release's default pose. Other arrays (mel, tokens,
head_latent) are ignored. Speech comes from ``speech.wav`` beside the file when present.
Letters: T frames, F face-code width.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avflow_cli import constants as K
from avflow_cli.errors import InputFileError
from avflow_cli.npzfile import npz_problem

__all__ = ["Motion", "load_motion", "LAYOUT_HELP"]

LAYOUT_HELP = (
    "motion.npz with 'face' (T, F) codes, optional 'fps' (default 86.13), optional 'head_pose' (T, 7) "
    "quaternion wxyz + translation mm (or 'head_R' (T, 3, 3) + 'head_t' (T, 3))"
)


@dataclass
class Motion:
    """Face codes and head pose at one frame rate."""

    face: np.ndarray  # (T, F) float32
    head_pose: np.ndarray | None  # (T, 7) float32, quaternion wxyz + translation mm
    fps: float
    path: Path | None = None

    @property
    def frames(self) -> int:
        return int(self.face.shape[0])

    @property
    def seconds(self) -> float:
        return self.frames / self.fps


def _rotmat_to_quat(rot: np.ndarray) -> np.ndarray:
    """(T, 3, 3) rotations → (T, 4) wxyz quaternions (Shepperd's method, hemisphere-continuous)."""
    from avflow_cli.vision.headpose import rotmat_to_quat

    return np.asarray(rotmat_to_quat(rot), dtype=np.float64)


def load_motion(path: str | Path) -> Motion:
    """Read and check a motion file (module doc); one-line errors name what is wrong."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, "file not found (a motion.npz written by `avflow synth` or in the same layout)")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, TypeError) as err:  # TypeError: an .npy array has no `with`
        raise InputFileError(path, npz_problem(path, err)) from err
    if "face" not in arrays:
        raise InputFileError(path, f"has no 'face' array; expected {LAYOUT_HELP}")
    face = arrays["face"]
    if face.ndim != 2 or face.shape[0] < 1 or face.shape[1] < 1 or face.dtype.kind not in "fiu":
        raise InputFileError(path, f"'face' must be a non-empty (T, F) number array, got {face.shape} {face.dtype}")
    if not np.isfinite(face).all():
        raise InputFileError(path, "'face' contains NaN or Inf")
    fps = K.FPS
    if "fps" in arrays:
        try:
            fps = float(np.asarray(arrays["fps"]).reshape(()))
        except (TypeError, ValueError) as err:
            raise InputFileError(path, f"'fps' must be one number, got shape {arrays['fps'].shape}") from err
        if not np.isfinite(fps) or fps <= 0:
            raise InputFileError(path, f"'fps' must be positive, got {fps}")
    pose = None
    if "head_pose" in arrays:
        pose = np.asarray(arrays["head_pose"], dtype=np.float64)
        if pose.ndim != 2 or pose.shape[1] != K.HEAD_POSE_DIM:
            raise InputFileError(path, f"'head_pose' must be (T, {K.HEAD_POSE_DIM}) quaternion wxyz + translation, got {pose.shape}")
    elif "head_R" in arrays or "head_t" in arrays:
        if "head_R" not in arrays or "head_t" not in arrays:
            raise InputFileError(path, "'head_R' and 'head_t' come together (rotations (T, 3, 3) and translations (T, 3))")
        rot, trans = np.asarray(arrays["head_R"], np.float64), np.asarray(arrays["head_t"], np.float64)
        if rot.ndim != 3 or rot.shape[1:] != (3, 3) or trans.shape != (rot.shape[0], 3):
            raise InputFileError(path, f"'head_R' must be (T, 3, 3) and 'head_t' (T, 3), got {rot.shape} and {trans.shape}")
        if not (np.isfinite(rot).all() and np.isfinite(trans).all()):
            raise InputFileError(path, "'head_R'/'head_t' contain NaN or Inf")
        pose = np.concatenate([_rotmat_to_quat(rot), trans], axis=1)
    if pose is not None:
        if not np.isfinite(pose).all():
            raise InputFileError(path, "'head_pose' contains NaN or Inf")
        if pose.shape[0] != face.shape[0]:
            raise InputFileError(path, f"'face' has {face.shape[0]} frames but the head pose {pose.shape[0]}")
        if (np.linalg.norm(pose[:, :4], axis=1) < 1e-6).any():
            raise InputFileError(path, "'head_pose' has a zero quaternion (columns 0-3 must be a rotation)")
    return Motion(face.astype(np.float32), None if pose is None else pose.astype(np.float32), fps, path)
