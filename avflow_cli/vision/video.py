"""Video input through ffmpeg: probe, stream RGB frames in fixed-size batches, extract audio.

Frames are piped from an ``ffmpeg`` subprocess as raw ``rgb24`` bytes and read ``batch`` frames
at a time, so memory stays at one batch however long the video is. With ``fps`` given, ffmpeg's
``fps`` filter resamples to a constant rate by timestamps (variable-frame-rate phone videos
become regular), so frame k sits at k / fps seconds.

Every ffmpeg/ffprobe call here opens its file through :mod:`avflow_cli.media_input`: the container
is sniffed from the bytes and must be a self-contained format, the demuxer is pinned with ``-f``
and only local files may be opened, so a playlist or concat list posing as a video is refused
instead of making ffmpeg read the files it names.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from avflow_cli.errors import AvflowError, InputFileError
from avflow_cli.fsutil import atomic_path
from avflow_cli.media_input import Container, ffmpeg_input_options, ffmpeg_url, sniff_container

DEFAULT_BATCH = 32  # frames per decoded batch


@dataclass(frozen=True)
class VideoInfo:
    """What ``ffprobe`` says about a video file (size after the display rotation is applied)."""

    path: Path
    width: int
    height: int
    fps: float  # average frame rate
    duration: float  # seconds (0.0 when unknown)
    num_frames: int  # from the container, or estimated as duration × fps
    has_audio: bool
    audio_sample_rate: int | None
    audio_channels: int | None
    container: Container | None = None  # what sniff_container found (the demuxer every later call pins)


def _parse_rate(rate: str | None) -> float:
    """'30000/1001' → 29.97; '0/0' or missing → 0.0."""
    if not rate:
        return 0.0
    try:
        value = Fraction(rate)
    except (ValueError, ZeroDivisionError):
        return 0.0
    return float(value)


def _rotation(stream: dict) -> int:
    """Display rotation in degrees from the stream tags or side data (phones record it there)."""
    tags = stream.get("tags") or {}
    if "rotate" in tags:
        try:
            return int(float(tags["rotate"])) % 360
        except ValueError:
            return 0
    for side in stream.get("side_data_list") or []:
        if "rotation" in side:
            return int(float(side["rotation"])) % 360
    return 0


def probe_video(path: str | Path) -> VideoInfo:
    """Read size, frame rate, duration and audio presence; one-line errors for unusable files."""
    import ffmpeg

    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, "file not found")
    container = sniff_container(path, "video")  # refuses playlists and lists of other files before ffprobe
    try:
        meta = ffmpeg.probe(ffmpeg_url(path), **ffmpeg_input_options(container))
    except ffmpeg.Error as err:
        detail = (err.stderr or b"").decode(errors="replace").strip().splitlines()
        last = _without_url(detail[-1], path) if detail else "ffprobe failed"
        raise InputFileError(path, f"not a readable video ({last})") from err
    except FileNotFoundError as err:
        raise AvflowError("ffprobe not found: install ffmpeg (Debian/Ubuntu: apt-get install ffmpeg)") from err
    streams = meta.get("streams", [])
    video = next((s for s in streams if s.get("codec_type") == "video"), None)
    if video is None:
        raise InputFileError(path, "no video stream")
    audio = next((s for s in streams if s.get("codec_type") == "audio"), None)
    width, height = int(video.get("width", 0)), int(video.get("height", 0))
    if width <= 0 or height <= 0:
        raise InputFileError(path, "video stream has no frame size")
    if _rotation(video) in (90, 270):
        width, height = height, width
    fps = _parse_rate(video.get("avg_frame_rate")) or _parse_rate(video.get("r_frame_rate"))
    if fps <= 0:
        raise InputFileError(path, "cannot determine the frame rate")
    duration = float(video.get("duration") or meta.get("format", {}).get("duration") or 0.0)
    n = int(video.get("nb_frames") or 0) or int(round(duration * fps))
    return VideoInfo(
        path=path,
        width=width,
        height=height,
        fps=fps,
        duration=duration,
        num_frames=n,
        has_audio=audio is not None,
        audio_sample_rate=int(audio["sample_rate"]) if audio is not None and audio.get("sample_rate") else None,
        audio_channels=int(audio["channels"]) if audio is not None and audio.get("channels") else None,
        container=container,
    )


def _without_url(line: str, path: Path) -> str:
    """An ffmpeg message without the ``file:<path>: `` it starts with (the error names the file already)."""
    url = ffmpeg_url(path)
    return line.replace(f"{url}: ", "").replace(url, path.name)


def _input(info: VideoInfo) -> Any:
    """``ffmpeg.input`` of a probed file: its sniffed demuxer pinned, local files only."""
    import ffmpeg

    container = info.container or sniff_container(info.path, "video")
    return ffmpeg.input(ffmpeg_url(info.path), **ffmpeg_input_options(container))


def iter_frames(
    path: str | Path,
    *,
    batch: int = DEFAULT_BATCH,
    fps: float | None = None,
    info: VideoInfo | None = None,
) -> Iterator[np.ndarray]:
    """Yield RGB frames as uint8 arrays (B, H, W, 3), B ≤ ``batch`` (only the last is shorter).

    ``fps`` resamples to a constant frame rate; None keeps the file's frames as they are.
    The ffmpeg process is terminated when the consumer stops early.
    """
    import ffmpeg

    if batch < 1:
        raise AvflowError(f"batch must be ≥ 1, got {batch}")
    info = info or probe_video(path)
    stream = _input(info)
    if fps is not None:
        if fps <= 0:
            raise AvflowError(f"fps must be positive, got {fps}")
        stream = stream.filter("fps", fps=fps)
    cmd = ffmpeg.output(stream, "pipe:", format="rawvideo", pix_fmt="rgb24", loglevel="error").compile()
    frame_bytes = info.width * info.height * 3
    with tempfile.TemporaryFile() as errlog:
        try:
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=errlog, stdin=subprocess.DEVNULL)
        except FileNotFoundError as err:
            raise AvflowError("ffmpeg not found: install ffmpeg (Debian/Ubuntu: apt-get install ffmpeg)") from err
        assert proc.stdout is not None
        try:
            while True:
                data = proc.stdout.read(frame_bytes * batch)
                if not data:
                    break
                n = len(data) // frame_bytes
                if n == 0:
                    break  # a partial trailing frame: the stream was cut
                frames = np.frombuffer(data[: n * frame_bytes], dtype=np.uint8)
                yield frames.reshape(n, info.height, info.width, 3)  # (B, H, W, 3)
                if n < batch:
                    break
        finally:
            proc.stdout.close()
            if proc.poll() is None:
                proc.terminate()
            code = proc.wait()
        if code not in (0, -15):  # -15: we terminated it on early exit
            errlog.seek(0)
            detail = errlog.read().decode(errors="replace").strip().splitlines()
            last = _without_url(detail[-1], info.path) if detail else f"exit {code}"
            raise InputFileError(info.path, f"ffmpeg failed while decoding ({last})")


def extract_audio(
    path: str | Path,
    out_wav: str | Path,
    *,
    sample_rate: int | None = None,
    channels: int | None = None,
) -> Path:
    """Write the video's first audio stream as 16-bit PCM WAV (atomically).

    ``sample_rate`` / ``channels`` resample and down-mix in ffmpeg; None keeps the original.
    """
    import ffmpeg

    info = probe_video(path)
    if not info.has_audio:
        raise InputFileError(info.path, "video has no audio stream")
    out_wav = Path(out_wav)
    opts: dict[str, object] = {"acodec": "pcm_s16le", "vn": None, "loglevel": "error", "format": "wav"}
    if sample_rate is not None:
        opts["ar"] = int(sample_rate)
    if channels is not None:
        opts["ac"] = int(channels)
    with atomic_path(out_wav) as tmp:
        try:
            _input(info).output(str(tmp), **opts).overwrite_output().run(
                capture_stdout=True, capture_stderr=True
            )
        except ffmpeg.Error as err:
            detail = (err.stderr or b"").decode(errors="replace").strip().splitlines()
            last = _without_url(detail[-1], info.path) if detail else "ffmpeg error"
            raise InputFileError(info.path, f"audio extraction failed ({last})") from err
    return out_wav
