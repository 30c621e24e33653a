"""Motion → 30 fps H.264 mp4 with the speech, drawn by whichever avatar the model carries.

Two frame sources share one interface (:class:`FrameSource`):

- :class:`CodecAvatarFrames`: the release's codec avatar (:mod:`.avatar`), decoded and
  rasterised in chunks on the GPU when there is one, else on the CPU;
- :class:`DemoAvatarFrames`: the built-in demo avatar, whose exact decoder turns face codes back
  into named face parameters (:mod:`avflow_cli.render.demo_avatar`).

:func:`open_frame_source` picks one from a path (an avatar folder, the release's decoder folder
or a demo ``face_decoder.npz``). Motion is resampled to 30 fps as the release does before
rendering (face codes linearly; head rotations by normalised quaternion interpolation).
The mp4 is written atomically: a failure leaves nothing behind.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from avflow_cli.errors import AvflowError, InputFileError
from avflow_cli.render.mp4 import encode_mp4  # re-exported: part of this module's API

__all__ = [
    "VIDEO_FPS",
    "DEFAULT_CODEC_SIZE",
    "DEFAULT_DEMO_SIZE",
    "FrameSource",
    "CodecAvatarFrames",
    "DemoAvatarFrames",
    "open_frame_source",
    "find_frame_source",
    "to_video_rate",
    "encode_mp4",
    "render_motion",
]

VIDEO_FPS = 30.0  # the release's video rate (expr/head are resampled 86.13 → 30 fps)
DEFAULT_CODEC_SIZE = 1024  # the release renders 1024²
DEFAULT_DEMO_SIZE = 512
CPU_CHUNK, GPU_CHUNK = 4, 60  # frames decoded at once (the release renders chunks of 60 on GPU)


class FrameSource(Protocol):
    """Draws RGB frames (size, size, 3) uint8 for face codes and head poses at 30 fps."""

    name: str
    size: int

    def check(self, face: np.ndarray) -> None: ...

    def frames(self, face: np.ndarray, head_pose: np.ndarray | None) -> Iterator[np.ndarray]: ...


class CodecAvatarFrames:
    """The release's codec avatar: decoder + rasteriser (see :mod:`avflow_cli.render.avatar`)."""

    def __init__(self, avatar: Any, size: int = DEFAULT_CODEC_SIZE, background: tuple[float, float, float] = (0, 0, 0)) -> None:
        from avflow_cli.render.camera import release_camera

        self.avatar = avatar
        self.size = int(size)
        self.camera = release_camera(self.size)
        self.background = background
        self.chunk = GPU_CHUNK if avatar.device.type == "cuda" else CPU_CHUNK
        self.name = f"{avatar.describe()} at {self.size}² on {avatar.device}"

    def check(self, face: np.ndarray) -> None:
        self.avatar.check_codes(face, "the motion's face codes")

    def frames(self, face: np.ndarray, head_pose: np.ndarray | None) -> Iterator[np.ndarray]:
        import torch

        from avflow_cli.render.camera import headpose_from_pose7

        self.check(face)
        if self.avatar.head_pose_mode != "camera":
            head_pose = None  # e.g. Audio2Photoreal skeleton angles: not a camera transform
        rt = headpose_from_pose7(head_pose, len(face))  # (T, 3, 4)
        for start in range(0, len(face), self.chunk):
            codes = torch.as_tensor(face[start:start + self.chunk], dtype=torch.float32)
            pose = torch.as_tensor(rt[start:start + self.chunk])
            imgs = self.avatar.render(codes, pose, camera=self.camera, background=self.background)  # (b, H, W, 3)
            yield from imgs.cpu().numpy()


class DemoAvatarFrames:
    """The built-in demo avatar drawn from the exact parameters of its face codes."""

    def __init__(self, decoder: Any, size: int = DEFAULT_DEMO_SIZE, palette: str = "actor") -> None:
        self.decoder = decoder
        self.size = int(size)
        self.palette = palette
        self.name = f"demo avatar at {self.size}²"

    def check(self, face: np.ndarray) -> None:
        if face.shape[-1] != self.decoder.dim:
            raise AvflowError(f"the motion's face codes are {face.shape[-1]}-d but the demo avatar's decoder "
                              f"takes {self.decoder.dim}-d codes")

    def frames(self, face: np.ndarray, head_pose: np.ndarray | None) -> Iterator[np.ndarray]:
        from avflow_cli.render.demo_avatar import render_frames

        self.check(face)
        yield from render_frames(self.decoder.params(face), head_pose, self.size, palette=self.palette)


def open_frame_source(path: str | Path, *, size: int | None = None, device: str = "auto") -> FrameSource:
    """A frame source for ``path``: an avflow avatar folder, a folder holding the release's
    ``decoder/dec_params.pt`` (+ statistics and .obj; converted in memory), or a demo
    ``face_decoder.npz``."""
    path = Path(path)
    if path.is_file() and path.suffix == ".npz":
        from avflow_cli.render.demo_avatar import FaceDecoder

        return DemoAvatarFrames(FaceDecoder.load(path), size or DEFAULT_DEMO_SIZE)
    if not path.exists():
        raise InputFileError(path, "not found (give an avatar folder, the release's dataset folder or a demo face_decoder.npz)")
    if path.is_dir():
        from avflow_cli.device import resolve_device
        from avflow_cli.render.avatar import (
            AVATAR_DIR,
            CodecAvatar,
            find_release_avatar_files,
            import_release_avatar,
            is_avatar_dir,
        )

        dev = resolve_device(device)
        for candidate in (path, path / AVATAR_DIR):
            if is_avatar_dir(candidate):
                return CodecAvatarFrames(CodecAvatar.load(candidate, dev), size or DEFAULT_CODEC_SIZE)
        files = find_release_avatar_files(path)
        if files is not None:
            return CodecAvatarFrames(import_release_avatar(files, dev), size or DEFAULT_CODEC_SIZE)
    raise InputFileError(path, "not a face decoder: expected an avflow avatar folder, the release's decoder folder "
                               "(decoder/dec_params.pt + vert_mean.bin + vert_var.txt + .obj) or a demo face_decoder.npz")


def find_frame_source(folder: str | Path) -> Path | None:
    """The renderer a model (or shard) directory carries: its codec avatar, else the demo
    avatar's ``face_decoder.npz``, else None."""
    from avflow_cli.render.avatar import find_avatar
    from avflow_cli.render.demo_avatar import FACE_DECODER_FILE

    folder = Path(folder)
    avatar = find_avatar(folder)
    if avatar is not None:
        return avatar
    demo = folder / FACE_DECODER_FILE
    return demo if demo.is_file() else None


def to_video_rate(
    face: np.ndarray, head_pose: np.ndarray | None, fps: float, video_fps: float = VIDEO_FPS
) -> tuple[np.ndarray, np.ndarray | None]:
    """Resample (T, F) codes and (T, 7) poses from ``fps`` to ``video_fps`` by timestamps."""
    from avflow_cli.data.resample import resample_headpose, resample_to_fps

    n_out = max(1, int(np.floor(len(face) / fps * video_fps + 1e-9)))
    face_v = resample_to_fps(np.asarray(face, np.float32), fps, n_out, dst_rate=video_fps).astype(np.float32)
    pose_v = None
    if head_pose is not None:
        pose_v = resample_headpose(np.asarray(head_pose, np.float32), fps, n_out, dst_rate=video_fps).astype(np.float32)
    return face_v, pose_v


def render_motion(
    path: str | Path,
    face: np.ndarray,
    head_pose: np.ndarray | None,
    fps: float,
    source: FrameSource,
    *,
    audio: np.ndarray | None = None,
    audio_sr: int | None = None,
    video_fps: float = VIDEO_FPS,
    on_frame: Callable[[], None] | None = None,
) -> Path:
    """Render (T, F) codes and (T, 7) poses at ``fps`` to a ``video_fps`` mp4 with the speech."""
    source.check(face)
    face_v, pose_v = to_video_rate(face, head_pose, fps, video_fps)
    size = source.size + source.size % 2
    frames = source.frames(face_v, pose_v)
    if size != source.size:  # odd sizes: pad one row and column of background
        frames = (np.pad(f, ((0, 1), (0, 1), (0, 0)), mode="edge") for f in frames)
    return encode_mp4(path, frames, size, video_fps, audio=audio, audio_sr=audio_sr, on_frame=on_frame)


def frame_count(frames: int, fps: float, video_fps: float = VIDEO_FPS) -> int:
    """How many video frames :func:`render_motion` writes for ``frames`` at ``fps``."""
    return max(1, int(np.floor(frames / fps * video_fps + 1e-9)))
