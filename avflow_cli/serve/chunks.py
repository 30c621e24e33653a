"""``Synthesizer.stream`` output → the wire chunks of ``/v1/stream``.

``Synthesizer.stream`` yields pieces as they become final, and its parts become final at
different times: face codes per chunk of frames, audio a little later (the streaming vocoder
needs right context), head poses per whole head-VAE window. :class:`ChunkAssembler` turns them
into :class:`~avflow_cli.serve.engine.Chunk` s whose every part has a time anchor:

- audio: contiguous samples, ``t_start`` = first sample / sample rate;
- motion: rows ``[frame_start, frame_start + n)`` at FPS of face codes + head pose, sent only once
  the head pose of those frames is known (the neutral pose when the model has no head VAE);
- images (when asked): avatar frames at 30 fps, global indices ``[image_start, …)``, rendered as
  soon as the motion they interpolate is final, so they equal ``preview.mp4``'s frames (the same
  resampling by timestamps, the same renderer).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from avflow_cli import constants as K

VIDEO_FPS = 30.0  # the preview's frame rate


class ChunkAssembler:
    """Collects stream pieces; :meth:`add` / :meth:`finish` return what became sendable."""

    def __init__(self, *, face_dim: int, has_head_vae: bool, neutral_pose: np.ndarray,
                 render: Callable[[np.ndarray, np.ndarray | None], list[bytes]] | None) -> None:
        """``render(face (n, F), pose (n, 7) | None)`` draws rows already at VIDEO_FPS (None: no images)."""
        self.face = np.zeros((0, face_dim), np.float32)  # (T, F) every face row so far
        self.pose = np.zeros((0, K.HEAD_POSE_DIM), np.float32)  # (T', 7) known poses
        self.has_head_vae = has_head_vae
        self.neutral_pose = neutral_pose
        self.render = render
        self.samples = 0  # audio samples sent
        self.rows_sent = 0  # motion rows sent
        self.images_sent = 0  # 30-fps frames sent
        self.seq = 0

    # ------------------------------------------------------------------------------------------
    def add(self, piece: Any) -> dict[str, Any] | None:
        """Take one ``StreamChunk``; returns the parts that became sendable (None when none did)."""
        if piece.start != len(self.face):
            raise RuntimeError(f"stream frames out of order: got {piece.start}, expected {len(self.face)}")
        if piece.wav_start != self.samples:
            raise RuntimeError(f"stream audio out of order: got {piece.wav_start}, expected {self.samples}")
        self.face = np.concatenate([self.face, np.asarray(piece.face, np.float32)])
        if piece.head_pose is not None and len(piece.head_pose):
            if piece.head_pose_start != len(self.pose):
                raise RuntimeError("stream head poses out of order")
            self.pose = np.concatenate([self.pose, np.asarray(piece.head_pose, np.float32)])
        return self._take(np.asarray(piece.wav, np.float32), final=False)

    def finish(self) -> dict[str, Any] | None:
        """Whatever is left once the stream ended."""
        return self._take(np.zeros(0, np.float32), final=True)

    # ------------------------------------------------------------------------------------------
    def _poses(self, n: int) -> np.ndarray:
        if not self.has_head_vae:
            return np.broadcast_to(self.neutral_pose, (n, K.HEAD_POSE_DIM)).astype(np.float32)
        return self.pose[:n]

    def _take(self, wav: np.ndarray, final: bool) -> dict[str, Any] | None:
        ready = len(self.face) if not self.has_head_vae else min(len(self.face), len(self.pose))
        if final and self.has_head_vae and len(self.pose) < len(self.face):
            raise RuntimeError(f"stream ended with {len(self.face) - len(self.pose)} frames without a head pose")
        rows = slice(self.rows_sent, ready)
        motion = np.concatenate([self.face[rows], self._poses(ready)[rows]], axis=1)  # (n, F + 7)
        images: list[bytes] = []
        image_start = self.images_sent
        if self.render is not None and ready > 0:
            n_images = int(np.floor(ready / K.FPS * VIDEO_FPS + 1e-9))  # the preview's frame count for `ready` rows
            if not final:  # only frames whose time falls inside the known rows: interpolation needs no later row
                n_images = min(n_images, int(np.floor((ready - 1) / K.FPS * VIDEO_FPS + 1e-9)) + 1)
            if n_images > self.images_sent:
                from avflow_cli.data.resample import resample_headpose, resample_to_fps

                # the preview's resampling (linear by timestamps from 0, nlerp for rotations), cut to
                # the frames the known rows determine; only the new frames are drawn
                new = slice(self.images_sent, n_images)
                face_v = resample_to_fps(self.face[:ready], K.FPS, n_images, dst_rate=VIDEO_FPS)[new]
                pose_v = None
                if self.has_head_vae:
                    pose_v = resample_headpose(self.pose[:ready], K.FPS, n_images, dst_rate=VIDEO_FPS)[new]
                images = self.render(face_v, pose_v)
                self.images_sent = n_images
        if not len(wav) and not len(motion) and not images:
            return None
        part = {"seq": self.seq, "audio": wav, "t_start": self.samples, "frame_start": self.rows_sent,
                "motion": np.ascontiguousarray(motion, np.float32), "image_start": image_start, "images": images}
        self.seq += 1
        self.samples += len(wav)
        self.rows_sent = ready
        return part
