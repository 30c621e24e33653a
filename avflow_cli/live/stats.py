"""Running numbers of a live session (``LiveSession.stats``) and smile onsets for reaction latency.

Reaction latency pairs each participant smile onset (the face tracker's smile estimate, demo-avatar
parameter units 0–1) with the first avatar smile onset at or after it (its face codes decoded to the
demo avatar's ``smile`` parameter) within ``MAX_REACTION_S``. An onset is a rise above
``SMILE_ON`` after having been below ``SMILE_OFF`` (hysteresis: tracker jitter is not an onset).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

SMILE_ON = 0.5
SMILE_OFF = 0.35
MAX_REACTION_S = 3.0


class SmileOnsets:
    """Onset times of a smile signal fed sample by sample (time-ordered)."""

    def __init__(self, on: float = SMILE_ON, off: float = SMILE_OFF) -> None:
        self.on, self.off = on, off
        self.armed = False  # seen below `off` since the last onset
        self.onsets: list[float] = []

    def add(self, t: float, value: float) -> None:
        if math.isnan(value):
            return
        if value < self.off:
            self.armed = True
        elif value > self.on and self.armed:
            self.armed = False
            self.onsets.append(float(t))

    @staticmethod
    def latencies(participant: SmileOnsets, avatar: SmileOnsets, max_s: float = MAX_REACTION_S) -> list[float]:
        """For each participant onset: the delay to the avatar's next onset (within ``max_s``)."""
        out = []
        for tp in participant.onsets:
            nxt = [ta - tp for ta in avatar.onsets if 0.0 <= ta - tp <= max_s]
            if nxt:
                out.append(min(nxt))
        return out


@dataclass
class LiveStats:
    """Seconds unless named; ``as_dict()`` is JSON-ready. Structural settings are recorded with the numbers."""

    chunk_s: float = 0.0
    lead_s: float = 0.0
    lookahead_s: float = 0.0
    vocoder_context_s: float = 0.0
    token_delay_s: float = 0.0
    steps: int = 0  # Euler steps per chunk
    first_audio_latency: list[float] = field(default_factory=list)  # say() → the output carrying its first audio
    first_audio_heard: list[float] = field(default_factory=list)  # say() → session time its first audio plays
    first_audio_heard_queued: list[float] = field(default_factory=list)  # the same for lines that waited for another
    t2t_s: list[float] = field(default_factory=list)  # text-to-tokens per sentence
    reaction_latency: list[float] = field(default_factory=list)  # participant smile onset → avatar smile onset
    compute_s: float = 0.0  # sampler + head VAE + vocoder (+ text-to-tokens of later sentences), wall clock
    recognize_s: float = 0.0  # resampling + VAD + pocketsphinx
    track_s: float = 0.0  # face tracking
    render_s: float = 0.0
    cpu_s: float = 0.0  # CPU time: the process's during compute (torch workers included), the thread's in recognition and tracking
    render_cpu_s: float = 0.0
    audio_in_s: float = 0.0  # participant audio received
    session_s: float = 0.0  # the clock at the last step
    frames: int = 0  # motion frames out
    samples: int = 0  # audio samples out
    chunks: int = 0
    rendered: int = 0
    underruns: int = 0  # times the audio fell more than one chunk behind the clock
    max_behind_s: float = -math.inf  # clock − audio frontier, largest seen (negative: always ahead)
    drift: float = 0.0  # audio seconds − motion seconds out (at close: 0 when both agree)
    _late: bool = False

    @property
    def real_time_factor(self) -> float:
        """Compute seconds (model, vocoder, recogniser, tracker) per second of output."""
        return (self.compute_s + self.recognize_s + self.track_s) / max(self.frames / _fps(), 1e-9)

    @property
    def cpu_real_time_factor(self) -> float:
        """The same in process CPU seconds: what a machine to itself would need
        (the wall-clock factor also counts time other processes took the core)."""
        return self.cpu_s / max(self.frames / _fps(), 1e-9)

    @property
    def fps(self) -> dict[str, float]:
        """Motion frames out per session second, and frames the renderer draws per second of its time."""
        return {"motion": self.frames / max(self.session_s, 1e-9),
                "rendered": self.rendered / max(self.session_s, 1e-9),
                "render_capacity": self.rendered / self.render_s if self.render_s else 0.0,
                "render_capacity_cpu": self.rendered / self.render_cpu_s if self.render_cpu_s else 0.0}

    def as_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if not k.startswith("_")}
        out["max_behind_s"] = None if self.max_behind_s == -math.inf else self.max_behind_s
        out["real_time_factor"] = self.real_time_factor
        out["cpu_real_time_factor"] = self.cpu_real_time_factor
        out["fps"] = self.fps
        return out


def _fps() -> float:
    from avflow_cli.constants import FPS

    return FPS
