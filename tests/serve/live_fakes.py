"""A small stand-in for :class:`avflow_cli.live.LiveSession` that follows the contract (docs/serve.md
"Live"), so the protocol and its faults are tested without the cost of the model.

The fake avatar hums a 220 Hz tone while it says a line (0.06 s per character) and is silent
otherwise; its face code 0 is the tone's loudness, so audio and picture can be checked against
each other; it "sees" a face when a camera frame is not flat grey. ``speed`` > 1 runs its clock
faster than real time (to flood a client that never reads)."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from avflow_cli import constants as K
from avflow_cli.errors import AvflowError

CHUNK = 16  # frames per output, like the real session's default
SAMPLES_PER_FRAME = K.HOP_LENGTH  # SAMPLE_RATE / FPS


@dataclass
class FakeOutput:
    start: int
    t: float
    wav: np.ndarray
    wav_start: int
    face: np.ndarray
    head_pose: np.ndarray
    events: list[dict]
    emitted_at: float


@dataclass
class FakeStats:
    first_audio_latency: list[float] = field(default_factory=list)
    underruns: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"first_audio_latency": list(self.first_audio_latency), "underruns": self.underruns,
                "reaction_latency": None, "real_time_factor": 0.01, "fps": {"motion": K.FPS}, "drift": 0.0}


class FakeLiveSession:
    """Contract-shaped: push_audio, push_frame, say, interrupt, step, close, stats, render."""

    instances: list[FakeLiveSession] = []

    def __init__(self, synth: Any, *, sample_rate: int = 16000, seed: int = 0, clock: Any = None,
                 speed: float = 1.0, frame_size: int = 48, noisy: bool = False, **_: Any) -> None:
        self.sample_rate, self.seed, self.speed = sample_rate, seed, speed
        self.clock = clock or time.monotonic
        self.t0 = self.clock()
        self.face = SimpleNamespace(frames_tracked=0, frames_without_face=0)  # the tracker's counters
        self.face_dim, self.frame_size, self.noisy = int(synth.model.config.face_dim), frame_size, noisy
        self.done = 0  # frames emitted
        self.lines: list[tuple[str, int, int]] = []  # (id, start frame, end frame)
        self.next_free = 0
        self.audio: list[np.ndarray] = []
        self.frames: list[tuple[np.ndarray, float | None]] = []
        self.stats = FakeStats()
        self.closed = False
        self._video_next = 0
        self.said_at: dict[str, float] = {}
        self.thread = threading.current_thread().name
        FakeLiveSession.instances.append(self)

    def now(self) -> float:
        return (self.clock() - self.t0) * self.speed

    def push_audio(self, pcm: np.ndarray, sample_rate: int | None = None) -> None:
        assert pcm.dtype in (np.int16, np.dtype("<i2"), np.float32)
        self.audio.append(np.asarray(pcm))

    def push_frame(self, image: np.ndarray, t: float | None = None) -> None:
        assert image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8
        self.frames.append((image, t))
        self.face.frames_tracked += 1
        self.face.frames_without_face += int(image.std() < 2.0)  # flat grey: no face

    def say(self, text: str) -> str:
        if not text.strip():
            raise AvflowError("empty text: nothing to say")
        start = max(self.next_free, self.done + CHUNK)
        end = start + max(CHUNK, int(0.06 * len(text) * K.FPS))
        say_id = f"s{len(self.lines)}"
        self.lines.append((say_id, start, end))
        self.said_at[say_id] = self.now()
        self.next_free = end
        return say_id

    def interrupt(self) -> None:
        cut = self.done + CHUNK
        self.lines = [(i, s, min(e, cut)) for i, s, e in self.lines if s < cut]
        self.next_free = cut

    def _output(self, start: int, n: int) -> FakeOutput:
        frames = np.arange(start, start + n)
        loud = np.zeros(n, np.float32)
        events = []
        for say_id, s, e in self.lines:
            loud[(frames >= s) & (frames < e)] = 0.3
            if start <= s < start + n:
                events.append({"type": "say_start", "id": say_id, "t": s / K.FPS})
                self.stats.first_audio_latency.append(self.now() - self.said_at[say_id])
            if start <= e < start + n:
                events.append({"type": "say_end", "id": say_id, "t": e / K.FPS})
        samples = np.arange(start * SAMPLES_PER_FRAME, (start + n) * SAMPLES_PER_FRAME)
        wav = np.repeat(loud, SAMPLES_PER_FRAME) * np.sin(2 * np.pi * 220.0 * samples / K.SAMPLE_RATE)
        face = np.zeros((n, self.face_dim), np.float32)
        face[:, 0] = loud
        pose = np.tile(np.array([1, 0, 0, 0, 0, 0, 1000], np.float32), (n, 1))
        return FakeOutput(start, start / K.FPS, wav.astype(np.float32), start * SAMPLES_PER_FRAME, face, pose, events,
                          self.now())

    def step(self, now: float | None = None) -> list[FakeOutput]:
        now = self.now() if now is None else now
        outputs = []
        while (self.done + CHUNK) / K.FPS <= now:
            outputs.append(self._output(self.done, CHUNK))
            self.done += CHUNK
        return outputs

    def close(self, now: float | None = None) -> list[FakeOutput]:
        outputs = self.step(now)
        self.closed = True
        return [*outputs, self._output(self.done, CHUNK)]

    def render(self, output: FakeOutput, size: int = 256, fps: float = 30.0) -> list[np.ndarray]:
        """Like the real session: frame j shows time j / fps, drawn once the motion after it is known
        (frames up to the chunk's last motion frame); brightness = loudness."""
        first = max(self._video_next, int(np.ceil((output.start - 1) / K.FPS * fps - 1e-9)))
        end = int(np.floor((output.start + len(output.face) - 1) / K.FPS * fps + 1e-9)) + 1
        self._video_next = max(self._video_next, end)
        out = []
        rng = np.random.default_rng(first)
        for k in range(first, end):
            row = min(len(output.face) - 1, max(0, int(k / fps * K.FPS) - output.start))
            level = int(60 + 500 * output.face[row, 0])
            frame = np.full((self.frame_size, self.frame_size, 3), level, np.uint8)
            corner = self.frame_size if self.noisy else 4  # noise: JPEGs that do not compress (big)
            frame[:corner, :corner] = rng.integers(0, 255, (corner, corner, 3), dtype=np.uint8)
            out.append(frame)
        return out
