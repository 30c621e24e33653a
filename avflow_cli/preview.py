"""``preview.mp4`` for a synthesis: the model's avatar when it carries one, else plots.

The avatar is whichever the model directory carries (:func:`avflow_cli.render.video.find_frame_source`):
the release's codec avatar (``avatar/``, decoded and rasterised by :mod:`avflow_cli.render`; 1024²
on a GPU, 512² on the CPU) or the demo avatar (``face_decoder.npz``, 512²). Either is rendered at
30 fps with the speech, head pose applied as the release's renderer does. The plot preview shows
mel, face-code energy and head rotation over time with a moving cursor, so any face code gets a
watchable preview with its speech.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from avflow_cli import constants as K

if TYPE_CHECKING:  # pragma: no cover
    from avflow_cli.render.video import FrameSource
    from avflow_cli.synth import SynthesisResult

PREVIEW_FPS = 30.0
PLOT_SIZE = (960, 540)  # width, height in pixels (even, for yuv420p)


def quaternion_to_euler_deg(quat: np.ndarray) -> np.ndarray:
    """(T, 4) wxyz unit quaternions → (T, 3) roll, pitch, yaw in degrees."""
    q = quat / np.linalg.norm(quat, axis=1, keepdims=True).clip(1e-8)
    w, x, y, z = q.T
    roll = np.arctan2(2 * (w * x + y * z), 1 - 2 * (x * x + y * y))
    pitch = np.arcsin(np.clip(2 * (w * y - z * x), -1.0, 1.0))
    yaw = np.arctan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))
    return np.degrees(np.stack([roll, pitch, yaw], axis=1))


def write_preview(path: Path, result: "SynthesisResult", face_decoder: Path | None) -> str:
    """Write ``path`` and return which preview ran ("avatar" = the demo avatar, "codec avatar …",
    "plots"), or why none did. ``face_decoder``: what the model carries (see module doc)."""
    if shutil.which("ffmpeg") is None:
        return "none (ffmpeg not found)"
    if face_decoder is not None:
        return avatar_preview(path, result.face, result.head_pose, face_decoder, audio=result.wav,
                              audio_sr=result.sample_rate, device=result.components.get("device", "auto"))
    _plot_preview(path, result)
    return "plots"


def _open_avatar(face_decoder: Path, device: str) -> tuple[FrameSource, bool]:
    """The frame source of the avatar at ``face_decoder`` and whether it runs on a GPU.

    Previews render at 1024² on a GPU and at the demo size on a CPU, where full size is too slow.
    """
    from avflow_cli.device import resolve_device
    from avflow_cli.render.video import DEFAULT_DEMO_SIZE, open_frame_source

    on_gpu = resolve_device(device).type == "cuda"
    return open_frame_source(face_decoder, size=1024 if on_gpu else DEFAULT_DEMO_SIZE, device=device), on_gpu


def avatar_preview(
    path: Path,
    face: np.ndarray,
    head_pose: np.ndarray | None,
    face_decoder: Path,
    *,
    audio: np.ndarray | None,
    audio_sr: int | None,
    device: str = "auto",
) -> str:
    """Render (T, F) codes and (T, 7) poses at FPS with the avatar at ``face_decoder``; returns its kind."""
    from avflow_cli.render.video import DemoAvatarFrames, render_motion

    source, on_gpu = _open_avatar(face_decoder, device)
    render_motion(path, face, head_pose, K.FPS, source, audio=audio, audio_sr=audio_sr, video_fps=PREVIEW_FPS)
    return "avatar" if isinstance(source, DemoAvatarFrames) else f"codec avatar ({source.size}², {'cuda' if on_gpu else 'cpu'})"


def comparison_preview(
    path: Path,
    gen_face: np.ndarray,
    gen_pose: np.ndarray | None,
    true_face: np.ndarray,
    true_pose: np.ndarray | None,
    face_decoder: Path,
    *,
    audio: np.ndarray | None,
    audio_sr: int | None,
    device: str = "auto",
) -> str:
    """Generated | ground-truth motion (both at FPS) side by side with the generated speech."""
    from avflow_cli.render.video import encode_mp4, to_video_rate

    source, _ = _open_avatar(face_decoder, device)
    source.check(gen_face)
    source.check(true_face)
    g_face, g_pose = to_video_rate(gen_face, gen_pose, K.FPS, PREVIEW_FPS)
    t_face, t_pose = to_video_rate(true_face, true_pose, K.FPS, PREVIEW_FPS)
    n = min(len(g_face), len(t_face))
    pairs = zip(source.frames(g_face[:n], None if g_pose is None else g_pose[:n]),
                source.frames(t_face[:n], None if t_pose is None else t_pose[:n]))
    frames = (np.concatenate([a, b], axis=1) for a, b in pairs)  # preview sizes are even
    encode_mp4(path, frames, (2 * source.size, source.size), PREVIEW_FPS, audio=audio, audio_sr=audio_sr)
    return source.name


def _plot_background(result: "SynthesisResult") -> tuple[np.ndarray, list[tuple[float, float]], float]:
    """Draw the static figure; return its RGB pixels, each axis' x pixel span and the duration."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    seconds = result.mel.shape[0] / K.FPS
    time_axis = np.arange(result.mel.shape[0]) / K.FPS
    dpi = 100
    fig, axes = plt.subplots(3, 1, figsize=(PLOT_SIZE[0] / dpi, PLOT_SIZE[1] / dpi), dpi=dpi, sharex=True)
    axes[0].imshow(result.mel.T, origin="lower", aspect="auto", extent=(0, seconds, 0, K.N_MELS), cmap="magma")
    axes[0].set_ylabel("mel bin")
    axes[0].set_title(result.text[:90], fontsize=9)
    energy = np.linalg.norm(result.face - result.face.mean(0, keepdims=True), axis=1)  # (T,)
    axes[1].plot(time_axis, energy, color="tab:blue", lw=1)
    axes[1].set_ylabel("face-code\nenergy")
    if result.head_pose is not None:
        euler = quaternion_to_euler_deg(result.head_pose[:, :4])
        for j, name in enumerate(("roll", "pitch", "yaw")):
            axes[2].plot(time_axis, euler[:, j], lw=1, label=name)
        axes[2].set_ylabel("head (deg)")
    else:
        axes[2].plot(time_axis, result.head_latent, lw=0.8)
        axes[2].set_ylabel("head latent")
    axes[2].legend(loc="upper right", fontsize=7) if result.head_pose is not None else None
    axes[2].set_xlabel("time (s)")
    axes[2].set_xlim(0, seconds)
    fig.tight_layout()
    fig.canvas.draw()
    rgb = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()  # (H, W, 3)
    spans = []
    for ax in axes:
        x0 = ax.transData.transform((0, 0))[0]
        x1 = ax.transData.transform((seconds, 0))[0]
        spans.append((x0, x1))
    plt.close(fig)
    return rgb, spans, seconds


def _plot_preview(path: Path, result: "SynthesisResult") -> None:
    import cv2

    from avflow_cli.render.video import encode_mp4

    background, spans, seconds = _plot_background(result)
    height, width = background.shape[:2]
    background = np.pad(background, ((0, height % 2), (0, width % 2), (0, 0)), mode="edge")  # yuv420p: even sides
    n_frames = max(1, int(seconds * PREVIEW_FPS))
    x0, x1 = spans[0]

    def frames():
        for i in range(n_frames):
            frame = background.copy()
            x = int(round(x0 + (x1 - x0) * i / n_frames))
            cv2.line(frame, (x, 0), (x, frame.shape[0] - 1), (220, 30, 30), 2)
            yield frame

    size = (background.shape[1], background.shape[0])
    encode_mp4(path, frames(), size, PREVIEW_FPS, audio=result.wav, audio_sr=result.sample_rate)
