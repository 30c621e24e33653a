"""The server's model: one :class:`~avflow_cli.synth.Synthesizer`, loaded once, and what the API
needs from it. Synthesis itself is never re-implemented here — every output comes from
``Synthesizer.synthesize`` and is written by ``Synthesizer.save``.

Streaming: until ``Synthesizer.stream`` exists (issue "always-on avatar"), :meth:`ModelService.stream`
synthesizes sentence by sentence and yields each sentence as one :class:`Chunk` as soon as it
is done. A sentence's tokens are exactly those of the full-text synthesis (text-to-tokens
already runs per sentence with seed + i); AV-Flow's noise differs because each sentence is
sampled on its own. A finer-grained chunk source drops in by yielding the same :class:`Chunk`.
"""

from __future__ import annotations

import inspect
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from avflow_cli import __version__
from avflow_cli import constants as K
from avflow_cli.errors import AvflowError
from avflow_cli.synth import Synthesizer, split_sentences

PARTICIPANT_KWARGS = ("participant_audio", "participant_video")
NEUTRAL_POSE = np.array([1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1000.0], dtype=np.float32)  # identity at 1 m (demo avatar)


@dataclass
class Chunk:
    """A piece of a stream: audio and the motion of the same time span."""

    seq: int
    text: str  # the text this chunk speaks ("" when a chunk is not a whole sentence)
    audio: np.ndarray  # (N,) float32 at the vocoder's sample rate
    motion: np.ndarray  # (T, D) float32 at K.FPS; columns as ModelService.motion_layout
    t_start: float  # seconds from the start of the stream


class ModelService:
    """Holds the models of one ``avflow serve`` process and answers what the routes need."""

    def __init__(self, synth: Synthesizer) -> None:
        self.synth = synth
        self.face_dim = int(synth.model.config.face_dim)
        self.sample_rate = int(synth.vocoder.sample_rate)
        self.fps = float(K.FPS)
        path = synth.face_decoder_path
        self.avatar = "none" if path is None else ("demo" if Path(path).suffix == ".npz" else "codec")
        self._decoder = None
        if self.avatar == "demo":
            from avflow_cli.vision.demo_avatar import FaceDecoder

            decoder = FaceDecoder.load(path)
            self._decoder = decoder if decoder.dim == self.face_dim else None
            if self._decoder is None:
                self.avatar = "none"

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
        """Column groups of a chunk's motion rows, in order."""
        layout = [{"name": "face", "dim": self.face_dim}, {"name": "head_pose", "dim": K.HEAD_POSE_DIM}]
        if self._decoder is not None:
            from avflow_cli.vision.demo_avatar import FACE_PARAM_NAMES

            layout.append({"name": "avatar_params", "dim": len(FACE_PARAM_NAMES), "names": list(FACE_PARAM_NAMES)})
        return layout

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
        """(T, F) codes + (T, 7) pose (+ demo avatar parameters) → (T, D) float32 rows."""
        pose = np.broadcast_to(NEUTRAL_POSE, (len(face), K.HEAD_POSE_DIM)) if head_pose is None else head_pose
        parts = [np.asarray(face, np.float32), np.asarray(pose, np.float32)]
        if self._decoder is not None:
            from avflow_cli.vision.demo_avatar import clip_params

            parts.append(clip_params(self._decoder.params(face)))  # (T, P), clipped as the renderer does
        return np.ascontiguousarray(np.concatenate(parts, axis=1), dtype=np.float32)

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

    def stream(self, text: str, *, seed: int, steps: int | None, speed: float,
               cancelled: threading.Event) -> Iterator[Chunk]:
        """Chunks of ``text`` as they are generated (see the module docstring); stops when cancelled."""
        t_start = 0.0
        for i, sentence in enumerate(self.sentences(text)):
            if cancelled.is_set():
                return
            result = self.synth.synthesize(sentence, seed=seed + i, steps=steps, speed=speed)
            yield Chunk(seq=i, text=sentence, audio=result.wav.astype(np.float32),
                        motion=self.motion(result.face, result.head_pose), t_start=t_start)
            t_start += result.seconds
