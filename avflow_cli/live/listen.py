"""Recorded input pushed in pieces: the live session on input time (``Synthesizer.listen_session``).

The offline listening loop (``Synthesizer.listen``, ``avflow synth --participant-audio`` when
streamed, the guidance benchmarks) is a :class:`~avflow_cli.live.LiveSession` whose clock is the
participant audio received so far, so there is one listening implementation (docs/live.md).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from avflow_cli import constants as K
from avflow_cli.live.recognizer import PARTIAL_HOP_S
from avflow_cli.live.session import TOKEN_SETTLE_S, LiveSession
from avflow_cli.stream import DEFAULT_CHUNK


class ListenSession:
    """Recorded input pushed in pieces: a :class:`~avflow_cli.live.LiveSession` whose clock is the
    input time (the participant audio received), with the output held back until every cond row a
    chunk reads is known (``lead`` negative), so the avatar reacts to the words where they were said."""

    def __init__(self, synth: Any, *, sample_rate: int, steps: int | None = None, seed: int = 0,
                 chunk: int = DEFAULT_CHUNK, lookahead: int | None = None, video_fps: float = K.FACE_RATE,
                 token_extractor: str = "auto") -> None:
        from avflow_cli.models.streaming import receptive_field

        la = receptive_field(synth.model.config).right if lookahead is None else int(lookahead)
        settle = int(np.ceil(TOKEN_SETTLE_S * K.FPS)) if synth.model.config.participant_tokens else 0
        self.video_fps = float(video_fps)
        self.input_s = 0.0
        self.sr = int(sample_rate)
        self.live = LiveSession(synth, sample_rate=sample_rate, video_fps=video_fps, seed=seed, lookahead=la, chunk=chunk,
                                clock=lambda: self.input_s, lead=-(la + settle), token_delay=0.0,
                                steps=synth.model.config.steps if steps is None else steps,  # offline quality, not live speed
                                vocoder_context=getattr(synth.vocoder, "context_frames", None),
                                face_rate=video_fps, token_extractor=token_extractor)
        self.live.max_catch_up = 1 << 30  # input time is the clock: every chunk it allows, at once
        self.notes = self.live.notes
        self.frames_in = 0
        self.stream = self.live.stream

    @property
    def latency_s(self) -> float:
        """Input-time bound from a participant event to the first output that reflects it, when
        input arrives at least every PARTIAL_HOP_S (the recogniser's refresh)."""
        return (self.live.chunk - self.live.lead + 1) / K.FPS + PARTIAL_HOP_S

    def push(self, audio: np.ndarray, frames: np.ndarray | None = None, features: np.ndarray | None = None) -> list[Any]:
        """Participant audio (n,) at ``sample_rate`` (+ RGB frames (k, H, W, 3) or feature rows (k, D)
        at ``video_fps``) that just arrived; returns the avatar outputs that became final."""
        audio = np.asarray(audio, np.float32).reshape(-1)
        self.live.push_audio(audio)
        if features is not None:
            rows = np.atleast_2d(np.asarray(features, np.float32))
            self.live.push_features(rows, self.frames_in / self.video_fps, self.video_fps)
            self.frames_in += len(rows)
        if frames is not None:
            arr = np.asarray(frames)
            for rgb in arr.reshape(-1, *arr.shape[-3:]):
                self.live.push_frame(rgb, self.frames_in / self.video_fps)
                self.frames_in += 1
        self.input_s += len(audio) / self.sr
        return self.live.step()

    def close(self) -> list[Any]:
        """End of input: everything left."""
        return self.live.close()
