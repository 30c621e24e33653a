"""Frames → H.264 mp4 through ffmpeg, with the speech muxed in: the one video writer.

Used by the motion renderer (:mod:`.video`), the demo avatar (:mod:`.demo_avatar`), previews and
``converse``; it knows nothing of avatars, so each of them may import it without a cycle.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from avflow_cli.errors import AvflowError
from avflow_cli.fsutil import atomic_path


def _ffmpeg() -> str:
    exe = shutil.which("ffmpeg")
    if exe is None:
        raise AvflowError("ffmpeg not found: run `make install` or `sudo apt-get install ffmpeg`")
    return exe


def encode_mp4(
    path: str | Path,
    frames: Iterable[np.ndarray],
    size: int | tuple[int, int],
    fps: float,
    *,
    audio: np.ndarray | None = None,
    audio_sr: int | None = None,
    crf: int = 23,
    preset: str = "ultrafast",
    on_frame: Callable[[], None] | None = None,
) -> Path:
    """Encode RGB uint8 frames (H, W, 3) of ``size`` = side or (width, height) to H.264 (yuv420p)
    with optional audio (N,) or (C, N) at ``audio_sr``; atomic, one-line error if ffmpeg fails."""
    width, height = (size, size) if isinstance(size, int) else size
    if width % 2 or height % 2:
        raise ValueError("yuv420p needs even frame sides")
    if audio is not None and not audio_sr:
        raise AvflowError("audio_sr is required with audio")
    exe = _ffmpeg()
    with tempfile.TemporaryDirectory(prefix="avflow-video-") as tmpdir, atomic_path(path) as tmp_out:
        cmd = [exe, "-hide_banner", "-loglevel", "error", "-y",
               "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-r", f"{fps:.6f}", "-i", "-"]
        if audio is not None:
            from avflow_cli.audio.io import write_audio  # imports torch: only when muxing audio

            wav = Path(tmpdir) / "audio.wav"
            write_audio(wav, np.nan_to_num(np.asarray(audio, dtype=np.float32)), int(audio_sr))
            cmd += ["-i", str(wav), "-c:a", "aac", "-b:a", "96k", "-shortest"]
        cmd += ["-c:v", "libx264", "-preset", preset, "-crf", str(crf), "-pix_fmt", "yuv420p",
                "-threads", "1", "-movflags", "+faststart", "-f", "mp4", str(tmp_out)]
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
        assert proc.stdin is not None
        wrote = 0
        try:
            for frame in frames:
                if frame.shape != (height, width, 3) or frame.dtype != np.uint8:
                    raise ValueError(f"frame {wrote} is {frame.shape} {frame.dtype}, expected ({height}, {width}, 3) uint8")
                proc.stdin.write(np.ascontiguousarray(frame).tobytes())
                wrote += 1
                if on_frame is not None:
                    on_frame()
            proc.stdin.close()
        except BrokenPipeError:
            pass
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        if proc.wait() != 0:
            last = (err.strip().splitlines() or ["no message"])[-1]
            raise AvflowError(f"{path}: ffmpeg failed to encode the video ({last})")
        if wrote == 0:
            raise AvflowError(f"{path}: no frames to encode")
    return Path(path)
