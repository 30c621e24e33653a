"""``preview.mp4`` for a synthesis: the demo avatar when its decoder is known, else plots.

The plot preview shows mel, face-code energy and head rotation over time with a moving cursor,
so any face code (not only the demo avatar's) gets a watchable preview with its speech.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from avflow_cli import constants as K

if TYPE_CHECKING:  # pragma: no cover
    from avflow_cli.synth import SynthesisResult

PREVIEW_FPS = 30.0
PLOT_SIZE = (960, 540)  # width, height in pixels (even, for yuv420p)


def resample_rows(values: np.ndarray, src_rate: float, dst_rate: float) -> np.ndarray:
    """Linearly resample (T, D) rows from ``src_rate`` to ``dst_rate`` by timestamps."""
    n_out = max(1, int(np.floor(len(values) / src_rate * dst_rate)))
    t_src = np.arange(len(values)) / src_rate
    t_dst = np.arange(n_out) / dst_rate
    flat = values.reshape(len(values), -1)
    out = np.stack([np.interp(t_dst, t_src, flat[:, j]) for j in range(flat.shape[1])], axis=1)
    return out.reshape((n_out,) + values.shape[1:]).astype(np.float32)


def quaternion_to_euler_deg(quat: np.ndarray) -> np.ndarray:
    """(T, 4) wxyz unit quaternions → (T, 3) roll, pitch, yaw in degrees."""
    q = quat / np.linalg.norm(quat, axis=1, keepdims=True).clip(1e-8)
    w, x, y, z = q.T
    roll = np.arctan2(2 * (w * x + y * z), 1 - 2 * (x * x + y * y))
    pitch = np.arcsin(np.clip(2 * (w * y - z * x), -1.0, 1.0))
    yaw = np.arctan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))
    return np.degrees(np.stack([roll, pitch, yaw], axis=1))


def write_preview(path: Path, result: "SynthesisResult", face_decoder: Path | None) -> str:
    """Write ``path`` and return which preview ran ("avatar", "plots"), or why none did."""
    if shutil.which("ffmpeg") is None:
        return "none (ffmpeg not found)"
    if face_decoder is not None and result.head_pose is not None:
        _avatar_preview(path, result, face_decoder)
        return "avatar"
    _plot_preview(path, result)
    return "plots"


def _avatar_preview(path: Path, result: "SynthesisResult", face_decoder: Path) -> None:
    from avflow_cli.vision.demo_avatar import FaceDecoder, render_video

    decoder = FaceDecoder.load(face_decoder)
    params = resample_rows(decoder.params(result.face), K.FPS, PREVIEW_FPS)  # (T30, P)
    assert result.head_pose is not None
    pose = resample_rows(result.head_pose, K.FPS, PREVIEW_FPS)  # (T30, 7)
    pose[:, :4] /= np.linalg.norm(pose[:, :4], axis=1, keepdims=True).clip(1e-8)
    render_video(path, params, pose, fps=PREVIEW_FPS, audio=result.wav, audio_sr=result.sample_rate)


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

    from avflow_cli.audio.io import write_audio

    background, spans, seconds = _plot_background(result)
    n_frames = max(1, int(seconds * PREVIEW_FPS))
    x0, x1 = spans[0]
    with tempfile.TemporaryDirectory() as tmp:
        wav_path = Path(tmp) / "speech.wav"
        write_audio(wav_path, result.wav, result.sample_rate)

        def frames():
            for i in range(n_frames):
                frame = background.copy()
                x = int(round(x0 + (x1 - x0) * i / n_frames))
                cv2.line(frame, (x, 0), (x, frame.shape[0] - 1), (220, 30, 30), 2)
                yield frame

        write_mp4(path, frames(), PREVIEW_FPS, audio_path=wav_path)


def write_mp4(path: Path, frames, fps: float, audio_path: Path | None = None) -> None:
    """Encode RGB uint8 frames (an iterator of (H, W, 3)) to H.264 mp4, muxing ``audio_path``."""
    import ffmpeg

    iterator = iter(frames)
    first = next(iterator)
    height, width = first.shape[:2]
    video = ffmpeg.input("pipe:", format="rawvideo", pix_fmt="rgb24", s=f"{width}x{height}", r=fps)
    streams = [video]
    if audio_path is not None:
        streams.append(ffmpeg.input(str(audio_path)).audio)
    out = ffmpeg.output(
        *streams, str(path), vcodec="libx264", pix_fmt="yuv420p", acodec="aac", preset="veryfast", shortest=None,
        loglevel="error", vf="pad=ceil(iw/2)*2:ceil(ih/2)*2",
    ).overwrite_output()
    process = out.run_async(pipe_stdin=True, quiet=True)
    try:
        process.stdin.write(np.ascontiguousarray(first).tobytes())
        for frame in iterator:
            process.stdin.write(np.ascontiguousarray(frame).tobytes())
    except BrokenPipeError:
        pass  # ffmpeg died: its stderr below says why
    _, err = process.communicate()  # closes stdin, waits for the encoder to finish
    if process.returncode != 0:
        raise RuntimeError(f"ffmpeg failed writing {path}: {err.decode(errors='replace')[-500:]}")
