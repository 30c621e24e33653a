"""The server's model: one :class:`~avflow_cli.synth.Synthesizer`, loaded once, and what the API
needs from it. Synthesis is never re-implemented here: jobs call ``Synthesizer.synthesize`` (or
``synthesize_tokens``) and ``Synthesizer.save``; listening uses ``Synthesizer.prepare_participant``;
streams come from ``Synthesizer.stream``, re-cut into wire chunks by :mod:`.chunks`.

Avatar frames in a stream are rendered here, by the model's own frame source (the renderer of
``preview.mp4``: the demo avatar or the codec avatar), at the preview's 30 fps, and sent as JPEG:
the page shows what the preview shows, with no second renderer in JavaScript. Measured on this
2-core CPU with the demo avatar at 384²: 1.8 ms drawing + 1.7 ms JPEG per frame (≈ 0.1 s of
compute per second of speech) and ≈ 11 KiB per frame.
"""

from __future__ import annotations

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
from avflow_cli.serve.chunks import VIDEO_FPS, ChunkAssembler
from avflow_cli.synth import Synthesizer, split_sentences

NEUTRAL_POSE = np.array([1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1000.0], dtype=np.float32)  # identity at 1 m (demo avatar)
STREAM_FRAME_SIZE = 384  # pixels (square) of streamed avatar frames
STREAM_VIDEO_FPS = VIDEO_FPS
JPEG_QUALITY = 85
SCHEDULES = ("exact", "low-latency")


@dataclass
class Chunk:
    """A piece of a stream; each part carries its own time anchor (see :mod:`.chunks`)."""

    seq: int
    audio: np.ndarray  # (N,) float32 at the vocoder's sample rate
    t_start: float  # seconds: time of the first audio sample from the start of the speech
    motion: np.ndarray  # (n, D) float32 at K.FPS; columns as ModelService.motion_layout
    frame_start: int = 0  # index at K.FPS of the first motion row
    images: list[bytes] = field(default_factory=list)  # JPEG avatar frames at STREAM_VIDEO_FPS (when asked)
    image_start: int = 0  # index at STREAM_VIDEO_FPS of the first image


@dataclass
class ListenInput:
    """A listening-mode request's checked participant files."""

    audio: Path
    video: Path | None = None
    channel: str | None = None


class ModelService:
    """Holds the models of one ``avflow serve`` process and answers what the routes need."""

    def __init__(self, synth: Synthesizer) -> None:
        self.synth = synth
        cfg = synth.model.config
        self.face_dim = int(cfg.face_dim)
        self.sample_rate = int(synth.vocoder.sample_rate)
        self.fps = float(K.FPS)
        self.guided = bool(cfg.participant_tokens or cfg.participant_visual_dim)
        path = synth.face_decoder_path
        self.avatar = "none" if path is None else ("demo" if Path(path).suffix == ".npz" else "codec")
        self._frames: Any = None  # the frame source, opened on first use (the codec avatar is large)

    @classmethod
    def load(cls, model: str | Path, **kwargs: Any) -> ModelService:
        """Load the Synthesizer (the same one ``avflow synth`` uses) once."""
        return cls(Synthesizer(model, **kwargs))

    # ------------------------------------------------------------------------------------------
    @property
    def can_render(self) -> bool:
        """Whether the model carries an avatar to draw its faces with (see ``find_face_decoder``)."""
        return self.avatar != "none"

    def motion_layout(self) -> list[dict[str, Any]]:
        """Column groups of a chunk's motion rows, in order (as in motion.npz)."""
        return [{"name": "face", "dim": self.face_dim}, {"name": "head_pose", "dim": K.HEAD_POSE_DIM}]

    def info(self) -> dict[str, Any]:
        """Models, device, avatar and features, for ``/health``."""
        return {
            "version": __version__,
            "device": str(self.synth.device),
            "models": {k: Path(v).name if str(v).startswith("/") else v for k, v in self.synth.components.items()},
            "model_config_steps": int(self.synth.model.config.steps),
            "sample_rate": self.sample_rate,
            "fps": self.fps,
            "avatar": self.avatar,
            "stream": {"schedules": list(SCHEDULES), "default": SCHEDULES[0], "image_fps": STREAM_VIDEO_FPS,
                       "image_size": STREAM_FRAME_SIZE},
            "guidance": self.guided,  # False: in listening mode the model ignores the user (it still speaks)
        }

    @staticmethod
    def sentences(text: str) -> list[str]:
        """How text-to-tokens splits the text."""
        return split_sentences(text)

    # ------------------------------------------------------------------------------------------
    def render_rows(self, face: np.ndarray, head_pose: np.ndarray | None) -> list[bytes]:
        """JPEG avatar frames of (n, F) codes and (n, 7) poses that are already at the video rate."""
        import cv2

        from avflow_cli.render.video import open_frame_source

        if self._frames is None:
            self._frames = open_frame_source(self.synth.face_decoder_path, size=STREAM_FRAME_SIZE,
                                             device=str(self.synth.device))
        self._frames.check(face)
        out = []
        for frame in self._frames.frames(face, head_pose):  # (H, W, 3) uint8 RGB
            ok, data = cv2.imencode(".jpg", np.ascontiguousarray(frame[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
            if not ok:
                raise RuntimeError("JPEG encoding of an avatar frame failed")
            out.append(data.tobytes())
        return out

    def run_job(self, request: dict[str, Any], out_dir: Path, *, preview: bool,
                listen: ListenInput | None = None) -> dict[str, Any]:
        """Synthesize one request into ``out_dir`` (Synthesizer.save); returns its meta.json.

        With ``listen``, the user's recording becomes guidance through ``prepare_participant``; an
        empty text makes the avatar only listen (silence tokens as long as the recording)."""
        participant = None
        if listen is not None:
            participant = self.synth.prepare_participant(listen.audio, video=listen.video, channel=listen.channel)
        options = {"seed": request["seed"], "steps": request["steps"]}
        if request["text"]:
            result = self.synth.synthesize(request["text"], speed=request["speed"], participant=participant, **options)
        else:
            if participant is None or (participant.p_tokens is None and participant.p_smirk is None):
                raise AvflowError("this model was trained without participant guidance, so it cannot only listen: "
                                  "give it text to say")
            result = self.synth.synthesize_tokens(np.zeros((0, K.TOKEN_DIM), np.float32), participant=participant,
                                                  **options)
        self.synth.save(result, out_dir, preview=preview)
        return json.loads((out_dir / "meta.json").read_text())

    def stream(self, text: str, *, seed: int, steps: int | None, speed: float, cancelled: threading.Event,
               frames: bool = False, schedule: str = "exact") -> Iterator[Chunk]:
        """Wire chunks of ``Synthesizer.stream`` as parts become final (see :mod:`.chunks`), with
        avatar frames when ``frames`` and the model has an avatar; stops when cancelled."""
        assembler = ChunkAssembler(face_dim=self.face_dim, has_head_vae=self.synth.head_vae is not None,
                                   neutral_pose=NEUTRAL_POSE, render=self.render_rows if frames and self.can_render else None)
        pieces = self.synth.stream(text, seed=seed, steps=steps, speed=speed, schedule=schedule)
        try:
            for piece in pieces:
                if cancelled.is_set():
                    return
                part = assembler.add(piece)
                if part is not None:
                    yield self._chunk(part)
            part = assembler.finish()
            if part is not None:
                yield self._chunk(part)
        finally:
            pieces.close()

    def _chunk(self, part: dict[str, Any]) -> Chunk:
        return Chunk(seq=part["seq"], audio=part["audio"], t_start=part["t_start"] / self.sample_rate,
                     motion=part["motion"], frame_start=part["frame_start"], images=part["images"],
                     image_start=part["image_start"])
