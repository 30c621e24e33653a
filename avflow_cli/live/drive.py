"""Drive a :class:`~avflow_cli.live.LiveSession` from recordings, as a microphone and camera would.

Participant audio goes in ``piece_s`` at a time, camera frames at their timestamps and ``say``
lines at their times. Real time: each piece is pushed once the session clock has reached its end
(what a sound card delivers); as fast as possible: a :class:`FakeClock` jumps to each piece's end,
so the session behaves as in real time with the computation taking no time. The run ends with the
audio, or when the last line has been spoken, or when ``stop()`` turns true (Ctrl-C): then the
session is closed, so everything up to that moment is final.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

PIECE_S = 0.02  # participant audio per push (a sound card's buffer)
TAIL_S = 0.5  # silence after the last line ends


class FakeClock:
    """A clock that only moves when told (as-fast-as-possible runs, tests)."""

    def __init__(self, t: float = 0.0) -> None:
        self.t = float(t)

    def __call__(self) -> float:
        return self.t


def video_frames(path: Path, until_s: float) -> Iterator[tuple[float, np.ndarray]]:
    """(t, RGB frame) of a video file at its own frame rate, up to ``until_s``."""
    from avflow_cli.vision.video import iter_frames, probe_video

    info = probe_video(path)
    k = 0
    for batch in iter_frames(path, info=info, batch=8):
        for frame in batch:
            t = k / info.fps
            if t >= until_s:
                return
            yield t, frame
            k += 1


def drive(session: Any, audio: np.ndarray, rate: int, *, video: Path | None = None,
          says: list[tuple[float, str]] = (), clock: FakeClock | None = None, piece_s: float = PIECE_S,
          stop: Callable[[], bool] = lambda: False, on_output: Callable[[Any], None] | None = None,
          max_s: float | None = None) -> dict[str, Any]:
    """Run ``session`` over the recording (module docstring); returns what happened (ids of the
    lines, where it stopped, whether it was stopped early)."""
    piece = max(1, int(round(piece_s * rate)))
    duration = len(audio) / rate
    limit = duration if max_s is None else min(duration, max_s)
    frames = video_frames(video, limit) if video is not None else iter(())
    pending_frame = next(frames, None)
    says = sorted(says)
    ids: list[str] = []
    pos = 0
    stopped = False
    tail_until: float | None = None
    silence = np.zeros(piece, np.float32)
    while True:
        end_s = (pos + piece) / rate
        if end_s > limit + 1e-9:  # past the recording: silence until the avatar has finished speaking
            if session.busy:
                tail_until = None
            elif tail_until is None:
                tail_until = end_s + (TAIL_S if ids else 0.0)
            if tail_until is not None and end_s > tail_until:
                break
        if stop():
            stopped = True
            break
        if clock is not None:
            clock.t = end_s
        else:
            wait = end_s - session.now()
            if wait > 0:
                time.sleep(wait)
        chunk = audio[pos : pos + piece] if pos / rate < limit else silence
        session.push_audio(np.pad(chunk, (0, piece - len(chunk))))
        while pending_frame is not None and pending_frame[0] < end_s:
            session.push_frame(pending_frame[1], pending_frame[0])
            pending_frame = next(frames, None)
        while says and says[0][0] <= end_s:
            ids.append(session.say(says.pop(0)[1]))
        for out in session.step():
            if on_output is not None:
                on_output(out)
        pos += piece
    for out in session.close():
        if on_output is not None:
            on_output(out)
    return {"say_ids": ids, "stopped": stopped, "stopped_at_s": session.stats.session_s, "input_s": min(pos, len(audio)) / rate}
