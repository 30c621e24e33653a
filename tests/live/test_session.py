"""LiveSession's contract on a tiny random listening model: one clock, always on, say/interrupt, faces, close."""

from __future__ import annotations

import io

import numpy as np
import pytest

from avflow_cli import constants as K
from avflow_cli.errors import AvflowError
from avflow_cli.live import LiveOutput, LiveSession
from avflow_cli.live.drive import FakeClock
from tests.live.conftest import drawn_faces


def run(session: LiveSession, clock: FakeClock, until: float, *, piece: float = 0.02, audio: bool = True) -> list[LiveOutput]:
    outs = []
    while clock.t < until - 1e-9:
        clock.t = round(clock.t + piece, 6)
        if audio:
            session.push_audio(np.zeros(int(piece * 16000), np.float32))
        outs += session.step()
    return outs


def test_output_tiles_one_clock_and_never_stops_while_idle(tiny_synth) -> None:
    """No input at all: output still comes, ahead of the clock, frames and samples contiguous and agreeing."""
    clock = FakeClock()
    s = LiveSession(tiny_synth, clock=clock)
    outs = []
    for k in range(1, 76):
        clock.t = k * 0.02
        outs += s.step()
        assert s.sampler.emitted >= np.floor(clock.t * K.FPS) + s.lead - s.chunk  # always ahead of the clock
        assert (s.samples_out / K.SAMPLE_RATE) >= clock.t  # audio too: nothing to wait for
    outs += s.close()
    assert len(outs) > 8
    frames = samples = 0
    for o in outs:
        assert o.start == frames and o.wav_start == samples and o.t == pytest.approx(o.start / K.FPS)
        assert o.face.shape == (o.frames, tiny_synth.model.config.face_dim) and o.head_pose.shape == (o.frames, 7)
        assert o.wav.dtype == np.float32 and o.wav_start <= o.start * s.hop  # audio is behind motion, never ahead
        frames, samples = frames + o.frames, samples + len(o.wav)
    assert samples == frames * s.hop  # closed: audio and motion end together
    assert [o.emitted_at for o in outs] == sorted(o.emitted_at for o in outs)
    st = s.stats.as_dict()
    assert st["drift"] == 0.0 and st["underruns"] == 0 and st["frames"] == frames
    with pytest.raises(AvflowError, match="closed"):
        s.step()


def test_say_starts_at_the_next_free_frame_and_interrupt_silences(tiny_synth) -> None:
    clock = FakeClock()
    s = LiveSession(tiny_synth, clock=clock)
    outs = run(s, clock, 0.3)
    free = s.next_free_frame
    first = s.say("Hello there, this line is long enough to be cut in the middle by the user.")
    second = s.say("And this one never starts.")
    assert s.busy
    outs += run(s, clock, 0.8)
    cut = s.next_free_frame
    spoken = s._own_rows(np.arange(free, cut + 40))  # the avatar's own tokens: the line's rows
    s.interrupt()
    after = s._own_rows(np.arange(free, cut + 40))  # …up to the cut, silence after
    assert not np.allclose(spoken[cut - free :], s.own_blank) and np.allclose(after[cut - free :], s.own_blank)
    assert np.array_equal(after[: cut - free], spoken[: cut - free])
    outs += run(s, clock, 1.2)
    assert not s.busy
    events = [e for o in outs for e in o.events]
    assert {"type": "say_start", "id": first, "frame": free, "t": free / K.FPS} in events
    assert {"type": "interrupted", "id": first, "frame": cut, "t": cut / K.FPS} in events
    assert {"type": "interrupted", "id": second, "frame": cut, "t": cut / K.FPS} in events
    assert not [e for e in events if e["type"] == "say_end" or (e["id"] == second and e["type"] == "say_start")]
    # every event rides on the output whose frames hold it
    for o in outs:
        assert all(o.start <= e["frame"] < o.start + o.frames for e in o.events)
    assert len(s.stats.first_audio_latency) == 1 and s.stats.first_audio_heard[0] == pytest.approx(free / K.FPS - 0.3)


def test_lines_queue_back_to_back(tiny_synth) -> None:
    clock = FakeClock()
    s = LiveSession(tiny_synth, clock=clock)
    run(s, clock, 0.1)
    a, b = s.say("One."), s.say("Two.")
    outs = run(s, clock, 4.0)
    ev = {(e["type"], e["id"]): e["frame"] for o in outs for e in o.events}
    assert ev[("say_end", a)] == ev[("say_start", b)] and ("say_end", b) in ev
    # the second waited for the first: its wait is kept apart from the say latency
    assert len(s.stats.first_audio_heard) == 1 and len(s.stats.first_audio_heard_queued) == 1
    assert s.stats.first_audio_heard_queued[0] > s.stats.first_audio_heard[0]
    assert not s.busy


def test_compute_margin_follows_how_late_chunks_finish(tiny_synth) -> None:
    """Instant compute: the margin shrinks from one chunk to the step granularity; compute that takes
    80 ms of the clock per chunk: the margin grows to cover it, and the audio never runs out after start-up."""
    clock = FakeClock()
    s = LiveSession(tiny_synth, clock=clock)
    assert s.margin == s.chunk and s.lead == s.vocoder_context + 2 * s.chunk  # safe until measured
    run(s, clock, 1.2)
    assert 1 <= s.margin < s.chunk and s.lead == s.vocoder_context + s.chunk + s.margin
    assert s.stats.as_dict()["lead_s"] == pytest.approx(s.lead / K.FPS)

    slow_clock = FakeClock()
    slow = LiveSession(tiny_synth, clock=slow_clock)
    advance = slow._advance

    def computing(*a, **k):  # noqa: ANN002, ANN003
        slow_clock.t += 0.08
        return advance(*a, **k)

    slow._advance = computing
    while slow_clock.t < 2.0:
        slow_clock.t = round(slow_clock.t + 0.02, 6)
        slow.step()
        if slow_clock.t > 1.0:  # past the start-up fill (its three chunks take 240 ms of clock)
            assert slow.samples_out / K.SAMPLE_RATE >= slow_clock.t  # audio never behind the clock
    assert slow.margin >= np.ceil(0.08 * K.FPS)

    from avflow_cli.live.session import LIVE_STEPS

    assert s.steps == min(tiny_synth.model.config.steps, LIVE_STEPS) and s.stats.steps == s.steps  # on a CPU
    fixed = LiveSession(tiny_synth, clock=FakeClock(), lead=30)
    run(fixed, fixed._clock, 0.4)
    assert fixed.lead == 30


def test_a_line_starts_with_its_first_sound(tiny_synth) -> None:
    """Text-to-tokens pads a sentence with silent rows; a line drops them (but LINE_LEAD_IN) so its
    start is its first sound, and the say latency measured is the one heard."""
    from avflow_cli.live.session import LINE_LEAD_IN

    clock = FakeClock()
    s = LiveSession(tiny_synth, clock=clock)
    line_id = s.say("Hello there. How are you?")
    line = next(ln for ln in s.lines if ln.id == line_id)
    raw = np.asarray(tiny_synth.t2t.synthesize("Hello there.", seed=line.seed), np.float32)
    blank = int(np.argmax(s.own_blank))
    first_sound = int(np.flatnonzero(raw.argmax(axis=1) != blank)[0])
    assert np.array_equal(line.rows[0], raw[max(0, first_sound - LINE_LEAD_IN):])
    run(s, clock, 0.2)
    assert len(line.rows) <= 2 and all(len(r) for r in line.rows)


@pytest.mark.parametrize("text", ["", "   ", "\n"])
def test_say_refuses_text_it_cannot_speak(tiny_synth, text: str) -> None:
    s = LiveSession(tiny_synth, clock=FakeClock())
    with pytest.raises(AvflowError):
        s.say(text)
    assert not s.busy and not s.lines


def test_bad_audio_is_refused(tiny_synth) -> None:
    with pytest.raises(AvflowError, match="16000 Hz"):
        LiveSession(tiny_synth, sample_rate=8000)
    s = LiveSession(tiny_synth, sample_rate=48000, clock=FakeClock())
    with pytest.raises(AvflowError, match="48000"):
        s.push_audio(np.zeros(10, np.float32), sample_rate=44100)
    s.push_audio(np.zeros(480, np.int16))  # int16 is fine
    s.step(0.01)


def test_faces_tracked_at_a_bounded_rate_and_held_when_lost(tiny_synth) -> None:
    """30 fps camera: no face (0–0.4 s), a smiling face (0.4–0.8 s), no face (0.8–1.2 s); tracked ≤ 10/s;
    no guidance before the first face, the last face's features held after it is lost."""
    from PIL import Image

    clock = FakeClock()
    s = LiveSession(tiny_synth, clock=clock, face_rate=10)
    faces = drawn_faces(np.ones(1, np.float32), size=192)
    blank = np.full((192, 192, 3), 40, np.uint8)
    for k in range(36):
        clock.t = (k + 1) / 30
        t = k / 30
        frame = faces[0] if 0.4 <= t < 0.8 else blank
        if k == 15:  # one as JPEG bytes, as a browser sends it
            buf = io.BytesIO()
            Image.fromarray(frame).save(buf, format="JPEG", quality=90)
            frame = buf.getvalue()
        s.push_frame(frame, t)
        s.push_audio(np.zeros(533, np.float32))
        s.step()
    face = s.face
    assert face.frames_in == 36 and face.frames_tracked <= 13
    assert face.frames_without_face >= 6  # blank frames were tracked too (and found faceless)
    rows = face.rows(np.array([0.2, 0.5, 0.7, 1.1]))
    assert np.isnan(rows[0]).all()  # before any face: none (the model's "no guidance")
    assert not np.isnan(rows[1:]).any()
    assert np.array_equal(rows[3], rows[2])  # lost: held
    with pytest.raises(AvflowError, match="readable image"):
        s.push_frame(b"not a jpeg", 1.3)
        s.step(1.3)


def test_render_draws_the_avatar_at_30_fps_across_outputs(tiny_synth) -> None:
    clock = FakeClock()
    s = LiveSession(tiny_synth, clock=clock)
    outs = run(s, clock, 1.0) + s.close()
    frames = [f for o in outs for f in s.render(o, size=96)]
    total = sum(o.frames for o in outs)
    assert len(frames) == int(np.floor((total - 1) / K.FPS * 30)) + 1
    assert frames[0].shape == (96, 96, 3) and frames[0].dtype == np.uint8
    assert s.stats.as_dict()["fps"]["render_capacity"] > 0
