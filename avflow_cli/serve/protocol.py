"""The WebSocket stream format (``/v1/stream``), shared by the server, the page and Python clients.

Client → server: one text message, JSON ``{"text": str, "seed": int, "steps": int|null,
"speed": float, "frames": bool, "schedule": "exact"|"low-latency"}`` (``frames``: also send the
avatar's rendered frames; ``schedule``: ``Synthesizer.stream``'s — exact equals the offline result);
later, an optional ``{"type": "cancel"}`` stops the stream: the server closes with 1000 and the
reason "cancelled by the client".

Server → client, in order:

1. ``{"type": "accepted", "position": k, "schedule": …, "chunks": null, "sample_rate": 22050,
   "fps": 86.13…, "motion_layout": [{"name": "face", "dim": F}, {"name": "head_pose", "dim": 7}],
   "avatar": "demo"|"codec"|"none", "frames": bool}`` (``frames`` false when not asked or when
   the model has no avatar; ``chunks`` null: the count is not known in advance).
2. Per chunk, a text message then a binary message. Header ``{"type": "chunk", "seq",
   "sample_rate", "fps", "n_audio", "t_start", "n_frames", "frame_start", "motion_dim",
   "n_images", "image_start", "image_fps", "image_format": "jpeg", "image_bytes": [...]}``;
   payload = ``n_audio`` little-endian float32 samples (speech from ``t_start`` seconds), then
   ``n_frames × motion_dim`` float32 motion rows for frames ``frame_start…`` at ``fps`` (row-major,
   columns as ``motion_layout``; head pose wxyz + mm, the neutral pose without a head VAE), then
   ``n_images`` JPEG frames back to back (sizes in ``image_bytes``; image ``image_start + k`` shows
   time ``(image_start + k) / image_fps``). Audio, motion and images become final at different
   times, so each part has its own anchor; any part may be empty. Concatenated, the parts are the
   whole speech, motion.npz's rows and preview.mp4's frames.
3. ``{"type": "end", "chunks": n, "seconds": s, "first_audio_s": t, "elapsed_s": e}``, then the
   socket closes (1000).

Errors: ``{"type": "error", "status": 400|413|422|429|500|503, "message": str}``, then close code
1008 (bad request), 1009 (too large), 1007 (text that is not valid Unicode), 1013 (busy: try again
later) or 1011 (server error). A handshake from another origin, or naming a Host the server does
not answer to, is closed at once with 1008 and the reason (avflow_cli/serve/security.py).
Streamed audio is not peak-normalised (``speech.wav`` is, when the vocoder overshoots).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from avflow_cli.serve.engine import STREAM_VIDEO_FPS, Chunk

CLOSE_CODES = {400: 1008, 413: 1009, 422: 1007, 429: 1013, 500: 1011, 503: 1013}


def chunk_header(chunk: Chunk, *, sample_rate: int, fps: float) -> dict[str, Any]:
    """The JSON header that precedes a chunk's binary payload."""
    return {
        "type": "chunk",
        "seq": chunk.seq,
        "sample_rate": sample_rate,
        "fps": fps,
        "n_audio": int(chunk.audio.shape[0]),
        "t_start": round(float(chunk.t_start), 6),
        "n_frames": int(chunk.motion.shape[0]),
        "frame_start": int(chunk.frame_start),
        "motion_dim": int(chunk.motion.shape[1]),
        "n_images": len(chunk.images),
        "image_start": int(chunk.image_start),
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
