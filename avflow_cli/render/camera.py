"""The release's camera model, default head pose and view direction (facts from
facebookresearch/av_flow ``models/renderer.py`` and DRTK's ``transform``).

- Intrinsics are given for a 4096-pixel-wide capture camera (``DEFAULT_FOCAL``,
  ``DEFAULT_PRINCPT``); the release renders at 1024² by dividing both by 4. avflow renders at
  any square size S by scaling them by S / 4096.
- The head pose is a 3×4 ``[R | t]`` mapping head (avatar) coordinates to camera coordinates
  in millimetres. Without one, the release uses ``DEFAULT_HEADPOSE``: the head 1 m in front of
  the camera, flipped in y and z (avatar y up / z forward → camera y down / z away). Generated
  poses replace it as they are.
- The camera extrinsic ``Rt`` (identity by default) is composed as ``Rt · headpose``; the
  camera position in head coordinates, normalised, is the decoder's view direction.
- Projection (pinhole, no distortion): ``v_cam = R·v + t``, ``pixel = focal · (x/z, y/z) +
  princpt``, pixel centres at integer coordinates (the top-left corner is (−0.5, −0.5)).

Letters: B frames, V vertices.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from avflow_cli.vision.headpose import quat_to_rotmat

__all__ = [
    "RELEASE_IMAGE_SIZE",
    "RELEASE_RENDER_SIZE",
    "RELEASE_FOCAL",
    "RELEASE_PRINCPT",
    "DEFAULT_HEADPOSE",
    "Camera",
    "release_camera",
    "head_relative",
    "headpose_from_pose7",
    "project",
]

RELEASE_IMAGE_SIZE = 4096  # pixels: the side the intrinsics below refer to
RELEASE_RENDER_SIZE = 1024  # the release renders at 4096 / 4 (Renderer downsample_factor 4)
RELEASE_FOCAL = ((10085.45, 0.0), (0.0, 10082.49))  # pixels at RELEASE_IMAGE_SIZE
RELEASE_PRINCPT = (2048.00, 1707.60)  # pixels at RELEASE_IMAGE_SIZE
DEFAULT_HEADPOSE = ((1.0, 0.0, 0.0, 0.0), (0.0, -1.0, 0.0, 0.0), (0.0, 0.0, -1.0, 1000.0))  # [R | t], mm
_Z_EPS = 1e-8  # DRTK keeps the sign of z and keeps it away from zero before dividing


@dataclass(frozen=True)
class Camera:
    """Pinhole intrinsics for a ``width`` × ``height`` image (pixel centres at integers)."""

    focal: tuple[tuple[float, float], tuple[float, float]]  # 2×2 [[fx, s], [0, fy]]
    princpt: tuple[float, float]  # (cx, cy)
    width: int
    height: int

    def focal_tensor(self, batch: int, device: torch.device | str = "cpu") -> torch.Tensor:
        """shape: (B, 2, 2)"""
        return torch.tensor(self.focal, dtype=torch.float32, device=device).expand(batch, 2, 2)

    def princpt_tensor(self, batch: int, device: torch.device | str = "cpu") -> torch.Tensor:
        """shape: (B, 2)"""
        return torch.tensor(self.princpt, dtype=torch.float32, device=device).expand(batch, 2)


def release_camera(size: int = RELEASE_RENDER_SIZE) -> Camera:
    """The release's camera rendering a ``size`` × ``size`` image (its default: 1024)."""
    if size < 8:
        raise ValueError(f"image size must be at least 8 pixels, got {size}")
    s = size / RELEASE_IMAGE_SIZE
    (fx, sk), (_, fy) = RELEASE_FOCAL
    return Camera(((fx * s, sk * s), (0.0, fy * s)), (RELEASE_PRINCPT[0] * s, RELEASE_PRINCPT[1] * s), size, size)


def _pad44(m: torch.Tensor) -> torch.Tensor:
    """(..., 3, 4) or (..., 4, 4) → (..., 4, 4) with a [0 0 0 1] last row."""
    if m.shape[-2] == 4:
        return m
    last = torch.zeros(m.shape[:-2] + (1, 4), dtype=m.dtype, device=m.device)
    last[..., 0, 3] = 1.0
    return torch.cat([m, last], dim=-2)


def head_relative(headpose: torch.Tensor, rt: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Camera rotation, camera position and view direction in head coordinates.

    headpose (B, 3|4, 4) [R | t] head → camera (mm); rt (B, 3|4, 4) camera extrinsic or None
    (identity). Returns {"camrot": (B, 3, 3), "campos": (B, 3), "view": (B, 3)} with
    ``campos = −Rᵀt`` of ``Rt · headpose`` and ``view = campos / |campos|``.
    """
    m = _pad44(headpose)
    if rt is not None:
        m = _pad44(rt) @ m  # (B, 4, 4)
    rot, trans = m[..., :3, :3], m[..., :3, 3]  # (B, 3, 3), (B, 3)
    campos = (rot.transpose(-1, -2) @ -trans[..., None])[..., 0]  # (B, 3)
    view = campos / torch.linalg.norm(campos, dim=-1, keepdim=True)
    return {"camrot": rot, "campos": campos, "view": view}


def project(
    v: torch.Tensor, camrot: torch.Tensor, campos: torch.Tensor, focal: torch.Tensor, princpt: torch.Tensor
) -> torch.Tensor:
    """Head-space vertices → pixel x, y and camera-space depth z.

    v (B, V, 3), camrot (B, 3, 3), campos (B, 3), focal (B, 2, 2), princpt (B, 2) → (B, V, 3).
    """
    v_cam = torch.einsum("bij,bvj->bvi", camrot, v - campos[:, None, :])  # (B, V, 3)
    z = v_cam[..., 2:3]
    z_safe = torch.where(z < 0, z.clamp(max=-_Z_EPS), z.clamp(min=_Z_EPS))  # (B, V, 1)
    xy = v_cam[..., :2] / z_safe  # (B, V, 2)
    pix = torch.einsum("bij,bvj->bvi", focal, xy) + princpt[:, None, :]  # (B, V, 2)
    return torch.cat([pix, z], dim=-1)


def headpose_from_pose7(pose: np.ndarray | None, frames: int) -> np.ndarray:
    """avflow head poses (T, 7) = quaternion wxyz + translation (mm) → (T, 3, 4) ``[R | t]``.

    ``None`` gives the release's ``DEFAULT_HEADPOSE`` for every frame.
    """
    if pose is None:
        return np.broadcast_to(np.asarray(DEFAULT_HEADPOSE, dtype=np.float32), (frames, 3, 4)).copy()
    pose = np.asarray(pose, dtype=np.float64)
    rot = quat_to_rotmat(pose[:, :4])  # (T, 3, 3)
    return np.concatenate([rot, pose[:, 4:7, None]], axis=2).astype(np.float32)  # (T, 3, 4)
