"""The server's model: one :class:`~avflow_cli.synth.Synthesizer`, loaded once, and what the API
needs from it. Synthesis itself is never re-implemented here — every output comes from
``Synthesizer.synthesize`` and is written by ``Synthesizer.save``.

Streaming: until ``Synthesizer.stream`` exists (issue "always-on avatar"), :meth:`ModelService.stream`
synthesizes sentence by sentence and yields each sentence as one :class:`Chunk` as soon as it
is done. A sentence's tokens are exactly those of the full-text synthesis (text-to-tokens
already runs per sentence with seed + i); AV-Flow's noise differs because each sentence is
sampled on its own. A finer-grained chunk source drops in by yielding the same :class:`Chunk`.

Avatar frames in a stream are rendered here, by the model's own frame source (the renderer of
``preview.mp4``: the demo avatar or the codec avatar), at :data:`STREAM_VIDEO_FPS` and sent as
JPEG: the page shows exactly what the preview shows, with no second renderer in JavaScript.
Measured on this 2-core CPU with the demo avatar at 384²: 1.8 ms drawing + 1.7 ms JPEG per frame
(≈ 0.1 s per second of speech) and ≈ 11 KiB per frame.
"""

from __future__ import annotations

import inspect
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from avflow_cli import __version__
from avflow_cli import constants as K
from avflow_cli.errors import AvflowError
from avflow_cli.synth import Synthesizer, split_sentences

PARTICIPANT_KWARGS = ("participant_audio", "participant_video")
NEUTRAL_POSE = np.array([1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1000.0], dtype=np.float32)  # identity at 1 m (demo avatar)
STREAM_FRAME_SIZE = 384  # pixels (square) of streamed avatar frames
STREAM_VIDEO_FPS = 30.0  # the preview's frame rate
JPEG_QUALITY = 85


@dataclass
class Chunk:
    """A piece of a stream: audio and the motion of the same time span."""

    seq: int
    text: str  # the text this chunk speaks ("" when a chunk is not a whole sentence)
    audio: np.ndarray  # (N,) float32 at the vocoder's sample rate
    motion: np.ndarray  # (T, D) float32 at K.FPS; columns as ModelService.motion_layout
    t_start: float  # seconds from the start of the stream
    images: list[bytes] = field(default_factory=list)  # JPEG avatar frames at STREAM_VIDEO_FPS (when asked)


class ModelService:
    """Holds the models of one ``avflow serve`` process and answers what the routes need."""

    def __init__(self, synth: Synthesizer) -> None:
        self.synth = synth
        self.face_dim = int(synth.model.config.face_dim)
        self.sample_rate = int(synth.vocoder.sample_rate)
        self.fps = float(K.FPS)
        path = synth.face_decoder_path
        self.avatar = "none" if path is None else ("demo" if Path(path).suffix == ".npz" else "codec")
        self._frames: Any = None  # the frame source, opened on first use (the codec avatar is large)

    @classmethod
    def load(cls, model: str | Path, **kwargs: Any) -> ModelService:
        """Load the Synthesizer (the same one ``avflow synth`` uses) once."""
        return cls(Synthesizer(model, **kwargs))

    # ------------------------------------------------------------------------------------------
    @property
    def supports_listening(self) -> bool:
        """Whether this avflow's Synthesizer takes participant inputs (issue "always-on avatar")."""
        params = inspect.signature(self.synth.synthesize).parameters
        return all(name in params for name in PARTICIPANT_KWARGS)

    @property
    def stream_mode(self) -> str:
        return "per-sentence"

    def motion_layout(self) -> list[dict[str, Any]]:
        """Column groups of a chunk's motion rows, in order (as in motion.npz)."""
        return [{"name": "face", "dim": self.face_dim}, {"name": "head_pose", "dim": K.HEAD_POSE_DIM}]

    @property
    def motion_dim(self) -> int:
        return sum(group["dim"] for group in self.motion_layout())

    def info(self) -> dict[str, Any]:
        """Models, device, avatar and features, for ``/health``."""
        return {
            "version": __version__,
            "device": str(self.synth.device),
            "models": dict(self.synth.components),
            "model_config_steps": int(self.synth.model.config.steps),
            "sample_rate": self.sample_rate,
            "fps": self.fps,
            "avatar": self.avatar,
            "stream": self.stream_mode,
            "listening": self.supports_listening,
        }

    # ------------------------------------------------------------------------------------------
    @staticmethod
    def sentences(text: str) -> list[str]:
        """How the text is split for streaming (the same split text-to-tokens uses)."""
        return split_sentences(text)

    def motion(self, face: np.ndarray, head_pose: np.ndarray | None) -> np.ndarray:
        """(T, F) codes + (T, 7) pose (neutral without a head VAE) → (T, F + 7) float32 rows."""
        pose = np.broadcast_to(NEUTRAL_POSE, (len(face), K.HEAD_POSE_DIM)) if head_pose is None else head_pose
        return np.ascontiguousarray(np.concatenate([np.asarray(face, np.float32), np.asarray(pose, np.float32)], axis=1))

    @property
    def can_render(self) -> bool:
        """Whether the model carries an avatar to draw its faces with (see ``find_face_decoder``)."""
        return self.avatar != "none"

    def render_jpeg(self, face: np.ndarray, head_pose: np.ndarray | None) -> list[bytes]:
        """Avatar frames of (T, F) codes and (T, 7) poses at K.FPS, as JPEG at STREAM_VIDEO_FPS —
        the preview's renderer and rate, so a stream looks like preview.mp4."""
        import cv2

        from avflow_cli.render.video import open_frame_source, to_video_rate

        if self._frames is None:
            self._frames = open_frame_source(self.synth.face_decoder_path, size=STREAM_FRAME_SIZE,
                                             device=str(self.synth.device))
        self._frames.check(face)
        face_v, pose_v = to_video_rate(face, head_pose, K.FPS, STREAM_VIDEO_FPS)
        out = []
        for frame in self._frames.frames(face_v, pose_v):  # (H, W, 3) uint8 RGB
            ok, data = cv2.imencode(".jpg", np.ascontiguousarray(frame[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
            if not ok:
                raise RuntimeError("JPEG encoding of an avatar frame failed")
            out.append(data.tobytes())
        return out

    def run_job(self, request: dict[str, Any], out_dir: Path, *, preview: bool,
                participant: dict[str, Path] | None = None) -> dict[str, Any]:
        """Synthesize one request into ``out_dir`` (Synthesizer.save); returns its meta.json."""
        kwargs: dict[str, Any] = {}
        if participant:
            if not self.supports_listening:
                raise AvflowError("this avflow version cannot listen (Synthesizer has no participant inputs)")
            kwargs.update({k: str(v) for k, v in participant.items()})
        result = self.synth.synthesize(request["text"], seed=request["seed"], steps=request["steps"],
                                       speed=request["speed"], **kwargs)
        self.synth.save(result, out_dir, preview=preview)
        return json.loads((out_dir / "meta.json").read_text())

    def stream(self, text: str, *, seed: int, steps: int | None, speed: float, cancelled: threading.Event,
               frames: bool = False) -> Iterator[Chunk]:
        """Chunks of ``text`` as they are generated (see the module docstring), with avatar frames
        when ``frames`` and the model has an avatar; stops when cancelled."""
        t_start = 0.0
        for i, sentence in enumerate(self.sentences(text)):
            if cancelled.is_set():
                return
            result = self.synth.synthesize(sentence, seed=seed + i, steps=steps, speed=speed)
            images = self.render_jpeg(result.face, result.head_pose) if frames and self.can_render else []
            yield Chunk(seq=i, text=sentence, audio=result.wav.astype(np.float32),
                        motion=self.motion(result.face, result.head_pose), t_start=t_start, images=images)
            t_start += result.seconds
