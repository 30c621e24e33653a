"""Request-size limits and upload checks.

:class:`BodyLimit` caps every request body before the application parses it: a declared
``Content-Length`` over the limit is refused at once, a streamed body as soon as it crosses the
limit. The rest of the body is read and discarded (up to :data:`DRAIN_CAP`) so that the client,
still sending, receives the 413 answer instead of a reset connection.

Uploaded participant audio and video go through the same checks as CLI input
(:func:`avflow_cli.audio.io.read_audio`, :func:`avflow_cli.vision.video.probe_video`), with the
server's temporary path replaced by the upload's name in the message. Nothing reaches ffmpeg
unless :func:`avflow_cli.media_input.sniff_container` finds a self-contained container in its
bytes, and ffmpeg then reads it with that demuxer pinned and only local files allowed: an HLS
playlist, a concat list or an SDP file "recording" is refused (400) before a job exists.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from avflow_cli.errors import AvflowError, InputFileError
from avflow_cli.media_input import Container, ffmpeg_input_args, ffmpeg_url, sniff_container

DRAIN_CAP = 512 * 1024 * 1024  # bytes of an oversized body read and discarded before giving up on it
VIDEO_SUFFIXES = (".mp4", ".webm", ".mov", ".mkv", ".avi", ".m4v")


def too_large_message(limit: int, option: str) -> str:
    """The 413 message, naming the ``avflow serve`` option that sets this limit."""
    shown = f"{limit / 1024 / 1024:.1f} MiB" if limit >= 102_400 else f"{limit / 1024:.1f} KiB"
    return f"request body too large: this server accepts at most {shown} here ({option})"


class BodyLimit:
    """ASGI middleware: at most ``limit`` bytes of request body per request, where
    ``limit_for(path)`` is ``(limit, the option that sets it)``."""

    def __init__(self, app: ASGIApp, limit_for: Callable[[str], tuple[int, str]]) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        limit, option = self.limit_for(scope["path"])
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            if declared <= DRAIN_CAP:
                await _drain(receive)
            await _send_json(send, 413, {"error": too_large_message(limit, option)})
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    if message.get("more_body", False):
                        await _drain(receive, already=received)
                    raise HTTPException(413, too_large_message(limit, option))
            return message

        await self.app(scope, limited, send)


def _content_length(scope: Scope) -> int | None:
    for key, value in scope.get("headers", []):
        if key == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _drain(receive: Receive, already: int = 0) -> None:
    total = already
    while total <= DRAIN_CAP:
        message = await receive()
        if message["type"] != "http.request":
            return
        total += len(message.get("body", b""))
        if not message.get("more_body", False):
            return


async def _send_json(send: Send, status: int, body: dict[str, Any]) -> None:
    data = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": data})


# ---------------------------------------------------------------------------------------------
def _as_upload_error(err: AvflowError | str, field: str, filename: str, path: Path | None = None) -> AvflowError:
    """The CLI's message about a file, about the upload instead: the server's temporary paths are
    no business of the client's (tools like ffmpeg name them anywhere in their messages)."""
    problem = err.problem if isinstance(err, InputFileError) else str(err)
    if path is not None:
        problem = problem.replace(f"{path}: ", "").replace(str(path), filename)
        problem = problem.replace(str(path.parent), "…")  # sibling temporaries (the decoded copy)
        problem = problem.replace(path.name, filename)  # the stored name (tools name files as given)
    problem = problem.replace("--participant-channel", "the form field 'channel'")
    return AvflowError(f"{field} upload {filename!r}: {problem}")


def check_audio_upload(src: Path, dst: Path, *, field: str, filename: str, max_seconds: float,
                       channel: str | None = None) -> float:
    """Check an uploaded recording like ``--participant-audio`` and store it as ``dst`` (a .wav);
    returns its seconds.

    Files soundfile reads (wav, flac, ogg) are checked as they are; others (a browser's webm/opus
    recording, mp3, m4a) are decoded by ffmpeg to 16-bit wav first, keeping rate and channels.
    Then the participant checks of the CLI apply (one channel or a chosen one, a usable sample
    rate, not silent: :func:`avflow_cli.participant.audio.read_participant_audio`).
    """
    from avflow_cli.audio.io import read_audio
    from avflow_cli.participant.audio import read_participant_audio

    if src.stat().st_size == 0:
        raise AvflowError(f"{field} upload {filename!r}: empty file")
    try:
        audio, sr = read_audio(src)
        shutil.copyfile(src, dst)
    except InputFileError:
        try:  # only a whitelisted container reaches ffmpeg (playlists would make it read server files)
            container = sniff_container(src, "audio file")
        except InputFileError as err:
            raise _as_upload_error(err, field, filename, src) from None
        _decode_with_ffmpeg(src, dst, container, field=field, filename=filename)
        try:
            audio, sr = read_audio(dst)
        except InputFileError as err:
            raise _as_upload_error(err, field, filename, dst) from None
    seconds = audio.shape[1] / sr
    if seconds > max_seconds:
        raise AvflowError(f"{field} upload {filename!r}: {seconds:.1f} s long; this server accepts at most {max_seconds:g} s")
    try:
        read_participant_audio(dst, channel)
    except AvflowError as err:
        raise _as_upload_error(err, field, filename, dst) from None
    return seconds


def _decode_with_ffmpeg(src: Path, dst: Path, container: Container, *, field: str, filename: str) -> None:
    """ffmpeg → 16-bit wav, its demuxer pinned to the sniffed ``container``, local files only."""
    if shutil.which("ffmpeg") is None:
        raise AvflowError(f"{field} upload {filename!r}: not a wav/flac/ogg file, and ffmpeg is missing to decode it")
    proc = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *ffmpeg_input_args(src, container), "-vn",
                           "-acodec", "pcm_s16le", "-f", "wav", str(dst)], capture_output=True, text=True, timeout=120)
    if proc.returncode != 0 or not dst.is_file():
        dst.unlink(missing_ok=True)
        detail = (proc.stderr.strip().splitlines() or ["unknown format"])[-1].replace(ffmpeg_url(src), str(src))
        raise _as_upload_error(f"not a readable {container.name} audio file ({detail})", field, filename, src)


def check_video_upload(src: Path, *, field: str, filename: str, max_seconds: float) -> float:
    """Check an uploaded video like CLI input (a decodable video stream, a frame rate); returns seconds."""
    from avflow_cli.vision.video import probe_video

    if src.stat().st_size == 0:
        raise AvflowError(f"{field} upload {filename!r}: empty file")
    try:
        info = probe_video(src)
    except InputFileError as err:
        raise _as_upload_error(err, field, filename, src) from None
    if info.duration > max_seconds:
        raise AvflowError(f"{field} upload {filename!r}: {info.duration:.1f} s long; this server accepts at most {max_seconds:g} s")
    return info.duration


def video_suffix(filename: str) -> str:
    """A safe suffix for a stored video upload (ffmpeg reads by content; the suffix is cosmetic)."""
    suffix = Path(filename or "").suffix.lower()
    return suffix if suffix in VIDEO_SUFFIXES else ".mp4"
