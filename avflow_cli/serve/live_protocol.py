"""The ``/v1/live`` WebSocket protocol (version 1): typed messages, binary framing, close codes.

A full-duplex conversation with the live avatar (:class:`avflow_cli.live.LiveSession`). The
participant's microphone and camera go up, the avatar's speech and picture come down, both on
the *session clock* (seconds since the session started on the server). docs/serve.md ("Live")
describes the exchange; :func:`json_schema` is served at ``GET /v1/live/schema``.

Client → server
  text (JSON): ``hello`` (first, once), ``say``, ``interrupt``, ``stop``.
  binary: 4-byte header ``[kind u8, 0, 0, 0]`` then the payload —
  ``KIND_MIC`` (0x01): little-endian int16 mono PCM at ``hello.sample_rate``;
  ``KIND_CAMERA`` (0x02): one JPEG camera frame (stamped with the session time it arrives).

Server → client
  text (JSON): ``queued``, ``ready``, ``said``, ``event``, ``stats``, ``notice``, ``error``, ``bye``;
  each carries ``t`` once the session runs (session seconds when it was sent; events their own
  time); ``queued`` and an ``error`` before the session started have none.
  binary: 16-byte header ``[kind u8, 0, 0, 0, index u32 LE, t f64 LE]`` then the payload —
  ``KIND_AUDIO`` (0x81): int16 LE mono PCM at ``ready.sample_rate``; ``index`` = first sample,
  ``t`` = its session time (``index / sample_rate``);
  ``KIND_FRAME`` (0x82): one JPEG avatar frame; ``index`` at ``ready.render_fps``, ``t`` = the time it shows;
  ``KIND_MOTION`` (0x83): float32 LE rows of ``ready.motion_layout`` (face codes | head pose),
  ``index`` = first motion frame at ``ready.fps``, ``t`` = its time.
  A page plays audio sample ``index`` at ``origin + t`` on its audio clock and draws a frame at
  ``origin + t``: picture and sound stay in step without any other bookkeeping.
"""

from __future__ import annotations

import struct
from typing import Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

VERSION = 1
PATH = "/v1/live"

KIND_MIC, KIND_CAMERA = 0x01, 0x02
KIND_AUDIO, KIND_FRAME, KIND_MOTION = 0x81, 0x82, 0x83
UP_HEADER = 4
DOWN_HEADER = struct.Struct("<B3xId")  # kind, index, t → 16 bytes

# Close codes (RFC 6455 §7.4.1 and the IANA registry); the reason says what was wrong, in one line.
CLOSE_NORMAL = 1000  # after ``stop``: everything was sent, then ``bye``
CLOSE_GOING_AWAY = 1001  # the server is shutting down
CLOSE_UNSUPPORTED = 1003  # a binary message of an unknown kind
CLOSE_INVALID = 1007  # a message that cannot be read (bad JSON, odd PCM byte count, unknown type)
CLOSE_POLICY = 1008  # against the protocol: no hello first, a wrong sample rate, audio faster than real time,
#                      a cross-origin page, a client that stopped reading
CLOSE_TOO_BIG = 1009  # a message over ``ready.limits.max_message_bytes``
CLOSE_ERROR = 1011  # a bug on the server (details in its log)
CLOSE_BUSY = 1013  # another live session runs (this server's CPU serves one): try again later


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---------------------------------------------------------------------------------------------
# client → server
# ---------------------------------------------------------------------------------------------
class Hello(_Message):
    """The first message: what the client sends up and wants down."""

    type: Literal["hello"]
    version: int = Field(VERSION, description="Protocol version the client speaks (this server: 1).")
    sample_rate: int = Field(16000, description="Rate of the microphone PCM the client sends (Hz, ≥ 16000, ≤ 48000).")
    video: Literal["jpeg", "motion", "none"] = Field(
        "jpeg", description="Avatar picture down: JPEG frames of the demo avatar, motion rows, or nothing.")
    seed: int = Field(0, ge=0, le=2**31 - 1)


class Say(_Message):
    """Make the avatar speak a line (queued after the current one)."""

    type: Literal["say"]
    text: str
    tag: Optional[str] = Field(None, max_length=64, description="Echoed in ``said`` to match answers to requests.")


class Interrupt(_Message):
    """Stop the current and queued lines now; the avatar falls silent and keeps listening."""

    type: Literal["interrupt"]


class Stop(_Message):
    """End the session: the server flushes what is left, sends ``bye`` and closes (1000)."""

    type: Literal["stop"]


ClientMessage = Union[Hello, Say, Interrupt, Stop]
CLIENT_MESSAGE = TypeAdapter(ClientMessage)


# ---------------------------------------------------------------------------------------------
# server → client
# ---------------------------------------------------------------------------------------------
class Queued(_Message):
    type: Literal["queued"] = "queued"
    position: int = Field(..., description="Place in the server's generation queue (the running job finishes first).")


class Limits(_Message):
    max_message_bytes: int
    max_say_chars: int
    max_camera_fps: float
    max_audio_lead_s: float = Field(..., description="How far microphone audio may run ahead of the session clock.")


class MotionColumns(_Message):
    name: str
    dim: int


class Ready(_Message):
    """The session runs; its clock started at 0 when this was sent."""

    type: Literal["ready"] = "ready"
    version: int = VERSION
    session: str
    t: float
    sample_rate: int = Field(..., description="Rate of the avatar's PCM (KIND_AUDIO).")
    audio_format: Literal["pcm_s16le"] = "pcm_s16le"
    mic_sample_rate: int
    fps: float = Field(..., description="Motion frame rate (KIND_MOTION indices).")
    render_fps: float = Field(..., description="Avatar picture rate (KIND_FRAME indices).")
    video: Literal["jpeg", "motion", "none"]
    motion_layout: list[MotionColumns]
    guidance: bool = Field(..., description="False: the model says its lines but does not react to the participant.")
    limits: Limits


class Said(_Message):
    """A ``say`` was accepted: ``id`` names it in later events."""

    type: Literal["said"] = "said"
    id: str
    tag: Optional[str] = None
    t: float


class Event(_Message):
    """A line started, ended or was interrupted at session time ``t`` (``emitted_at``: when it became final)."""

    type: Literal["event"] = "event"
    event: Literal["say_start", "say_end", "interrupted"]
    id: str
    t: float
    emitted_at: float


class Stats(_Message):
    """Once a second: the session's own numbers and the connection's."""

    type: Literal["stats"] = "stats"
    t: float
    session: dict[str, Any] = Field(..., description="LiveStats.as_dict(): latencies, real-time factor, fps, underruns, drift.")
    link: dict[str, Any] = Field(..., description="Sent/dropped audio and frames, send-queue bytes, input received.")


class Notice(_Message):
    """Something the participant should know that does not end the session (no face in view, dropped frames)."""

    type: Literal["notice"] = "notice"
    code: Literal["no_face", "face_found", "camera_too_fast", "camera_frame_unreadable", "frames_dropped", "say_refused"]
    message: str
    t: float


class Error(_Message):
    """The session ends: ``code`` is the WebSocket close code that follows."""

    type: Literal["error"] = "error"
    code: int
    message: str
    t: Optional[float] = Field(None, description="Session seconds (None when the session had not started).")


class Bye(_Message):
    type: Literal["bye"] = "bye"
    t: float
    stats: Stats


SERVER_MESSAGES = (Queued, Ready, Said, Event, Stats, Notice, Error, Bye)


def json_schema() -> dict[str, Any]:
    """Every message of protocol version 1 as JSON Schema (``GET /v1/live/schema``)."""
    return {
        "title": "avflow live protocol",
        "version": VERSION,
        "path": PATH,
        "client_messages": CLIENT_MESSAGE.json_schema(),
        "server_messages": {cls.__name__: cls.model_json_schema() for cls in SERVER_MESSAGES},
        "binary": {
            "up": {"header": "[kind u8, 0, 0, 0]", "kinds": {"0x01": "microphone int16 LE mono PCM at hello.sample_rate",
                                                               "0x02": "camera JPEG frame"}},
            "down": {"header": "[kind u8, 0, 0, 0, index u32 LE, t f64 LE] (16 bytes)",
                     "kinds": {"0x81": "avatar int16 LE PCM, index = first sample at ready.sample_rate",
                               "0x82": "avatar JPEG frame, index at ready.render_fps",
                               "0x83": "float32 LE motion rows (ready.motion_layout), index = first frame at ready.fps"}},
        },
        "close_codes": {str(code): name for code, name in (
            (CLOSE_NORMAL, "stopped by the client: everything was sent"), (CLOSE_GOING_AWAY, "server shutting down"),
            (CLOSE_UNSUPPORTED, "binary message of unknown kind"), (CLOSE_INVALID, "unreadable message"),
            (CLOSE_POLICY, "protocol violation (reason says which)"), (CLOSE_TOO_BIG, "message too large"),
            (CLOSE_ERROR, "server error"), (CLOSE_BUSY, "another live session runs: try again later"))},
    }


def down_message(kind: int, index: int, t: float, payload: bytes) -> bytes:
    """A server → client binary message."""
    return DOWN_HEADER.pack(kind, index, t) + payload


def parse_down(data: bytes) -> tuple[int, int, float, bytes]:
    """(kind, index, t, payload) of a server → client binary message (clients and tests)."""
    kind, index, t = DOWN_HEADER.unpack_from(data)
    return kind, index, t, data[DOWN_HEADER.size:]


def up_message(kind: int, payload: bytes) -> bytes:
    """A client → server binary message."""
    return bytes((kind, 0, 0, 0)) + payload


def jpeg_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a JPEG's start-of-frame marker without decoding it; None if it is not a JPEG.

    Checked before decoding so that a few kilobytes declaring 60 000 × 60 000 pixels are refused
    instead of allocating gigabytes (ITU T.81 §B.2: SOFn = FFC0–FFCF except C4, C8, CC)."""
    if len(data) < 4 or data[0] != 0xFF or data[1] != 0xD8:
        return None
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):  # standalone markers
            i += 2
            continue
        length = int.from_bytes(data[i + 2:i + 4], "big")
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            if i + 9 > len(data):
                return None
            height = int.from_bytes(data[i + 5:i + 7], "big")
            width = int.from_bytes(data[i + 7:i + 9], "big")
            return width, height
        if length < 2:
            return None
        i += 2 + length
    return None
