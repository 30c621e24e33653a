"""The shipped model, live: a line said while listening is heard (energy where idle had none), and an
interrupt silences it; the one test of tests/live on the real demo model (CPU, under 20 s)."""

from __future__ import annotations

import numpy as np

from avflow_cli import constants as K
from avflow_cli.live import LiveSession
from avflow_cli.live.drive import FakeClock


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if len(x) else 0.0


def test_pretrained_speaks_when_told_and_falls_silent_when_interrupted() -> None:
    from avflow_cli.synth import Synthesizer

    synth = Synthesizer("pretrained", device="cpu")
    clock = FakeClock()
    s = LiveSession(synth, clock=clock)
    outs = []

    def run(until: float) -> None:
        while clock.t < until - 1e-9:
            clock.t = round(clock.t + 0.02, 6)
            s.push_audio(np.zeros(320, np.float32))
            outs.extend(s.step())

    run(0.6)
    start = s.next_free_frame
    s.say("Hello there, I am so glad you came by today, let me tell you about it.")
    run(1.8)
    cut = s.next_free_frame
    s.interrupt()
    run(2.6)
    outs.extend(s.close())
    wav = np.concatenate([o.wav for o in outs])
    hop = K.HOP_LENGTH
    idle = _rms(wav[: start * hop])
    speaking = _rms(wav[start * hop : cut * hop])
    after = _rms(wav[(cut + 20) * hop :])  # 20 frames for the vocoder's context and the word's release
    assert speaking > 5 * max(idle, 1e-4), (idle, speaking)
    assert after < 0.35 * speaking, (speaking, after)
    assert [e["type"] for o in outs for e in o.events] == ["say_start", "interrupted"]
    assert s.stats.drift == 0.0
