"""The WebSocket stream format (``/v1/stream``), shared by the server, the page and Python clients.

Client → server: one text message, JSON ``{"text": str, "seed": int, "steps": int|null,
"speed": float, "frames": bool}`` (``frames``: also send the avatar's rendered frames); later, an
optional ``{"type": "cancel"}`` stops the stream.

Server → client, in order:

1. ``{"type": "accepted", "position": k, "mode": "per-sentence", "chunks": n|null,
   "sample_rate": 22050, "fps": 86.13…, "motion_layout": [{"name": "face", "dim": F},
   {"name": "head_pose", "dim": 7}], "avatar": "demo"|"codec"|"none", "frames": bool}``
   (``chunks`` null when unknown; ``frames`` false when not asked or the model has no avatar).
2. Per chunk, a text message then a binary message:
   header ``{"type": "chunk", "seq", "sample_rate", "fps", "n_audio", "n_frames", "motion_dim",
   "t_start", "text", "n_images", "image_fps", "image_format": "jpeg", "image_bytes": [...]}``;
   payload = ``n_audio`` little-endian float32 samples, then ``n_frames × motion_dim`` float32
   motion rows (row-major, columns as ``motion_layout``; head pose rows are wxyz + mm, the
   neutral pose when the model has no head VAE), then the ``n_images`` JPEG frames back to
   back (sizes in ``image_bytes``; frame k shows time ``t_start + k / image_fps``).
   The header fully describes the payload, so chunks of any size (a sentence now, a few
   frames once ``Synthesizer.stream`` lands) use the same format.
3. ``{"type": "end", "chunks": n, "seconds": s, "elapsed_s": e}``, then the socket closes (1000).

Errors: ``{"type": "error", "status": 400|413|429|500, "message": str}``, then close code
1008 (bad request), 1013 (busy: try again later) or 1011 (server error).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from avflow_cli.serve.engine import STREAM_VIDEO_FPS, Chunk

CLOSE_CODES = {400: 1008, 413: 1009, 429: 1013, 500: 1011}


def chunk_header(chunk: Chunk, *, sample_rate: int, fps: float) -> dict[str, Any]:
    """The JSON header that precedes a chunk's binary payload."""
    return {
        "type": "chunk",
        "seq": chunk.seq,
        "sample_rate": sample_rate,
        "fps": fps,
        "n_audio": int(chunk.audio.shape[0]),
        "n_frames": int(chunk.motion.shape[0]),
        "motion_dim": int(chunk.motion.shape[1]),
        "t_start": round(float(chunk.t_start), 6),
        "text": chunk.text,
        "n_images": len(chunk.images),
        "image_fps": STREAM_VIDEO_FPS,
        "image_format": "jpeg",
        "image_bytes": [len(image) for image in chunk.images],
    }


def chunk_payload(chunk: Chunk) -> bytes:
    """float32 audio, float32 motion rows (little-endian), then the JPEG frames."""
    return b"".join([chunk.audio.astype("<f4").tobytes(), np.ascontiguousarray(chunk.motion).astype("<f4").tobytes(),
                     *chunk.images])


@dataclass
class DecodedChunk:
    """A chunk as a client sees it."""

    header: dict[str, Any]
    audio: np.ndarray  # (n_audio,)
    motion: np.ndarray  # (n_frames, motion_dim)
    images: list[bytes]  # JPEG frames


def decode_chunk(header: dict[str, Any], payload: bytes) -> DecodedChunk:
    """Split a payload by its header; ValueError when the sizes disagree."""
    n_audio, n_frames, dim = int(header["n_audio"]), int(header["n_frames"]), int(header["motion_dim"])
    sizes = [int(n) for n in header.get("image_bytes", [])]
    floats = 4 * (n_audio + n_frames * dim)
    if len(payload) != floats + sum(sizes):
        raise ValueError(f"chunk {header.get('seq')}: payload has {len(payload)} bytes, header says {floats + sum(sizes)}")
    data = np.frombuffer(payload[:floats], dtype="<f4")
    images, offset = [], floats
    for size in sizes:
        images.append(payload[offset:offset + size])
        offset += size
    return DecodedChunk(header, data[:n_audio].copy(), data[n_audio:].reshape(n_frames, dim).copy(), images)
