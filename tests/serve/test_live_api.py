"""``WS /v1/live`` against a real server (uvicorn in a thread) with a contract-shaped fake session
(tests/serve/live_fakes.py): the exchange, the timestamps, and every fault of issue 21 — a
client that leaves mid-sentence, one that never reads, malformed and oversized messages, wrong
sample rates, a camera with no face, a second session — each with its close code and reason,
the server serving the next client afterwards and nothing left behind (threads, temp files)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from functools import partial
from typing import Any

import cv2
import httpx
import numpy as np
import pytest
from live_client import MicSender, Received, open_live, receive, until_closed
from live_fakes import FakeLiveSession
from serve_helpers import LiveServer
from websockets.sync.client import connect

from avflow_cli import constants as K
from avflow_cli.serve import live_protocol as P


@pytest.fixture()
def live(live_server: LiveServer) -> Iterator[LiveServer]:
    """The module's server with the fake session; checks after each test that the session ended
    and released the server (no live link, no worker task, no extra thread)."""
    hub = live_server.app.state.avflow_live
    threads = {t.name for t in threading.enumerate()}
    files = sorted(live_server.state.settings.jobs_dir.rglob("*"))
    hub.factory = FakeLiveSession
    hub.warmed = True  # (test_the_first_session_warms_the_server_up undoes this)
    FakeLiveSession.instances.clear()
    yield live_server
    deadline = time.monotonic() + 10
    while (hub.active is not None or live_server.state.worker.busy) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert hub.active is None and not live_server.state.worker.busy
    assert all(s.closed for s in FakeLiveSession.instances)
    time.sleep(0.1)  # the test client's own threads (websockets' keepalive) end with it
    extra = {t.name for t in threading.enumerate()} - threads
    assert not {name for name in extra if not name.startswith(("asyncio_", "AnyIO worker"))  # pools
                and "keepalive" not in name}, extra
    assert sorted(live_server.state.settings.jobs_dir.rglob("*")) == files  # a live session writes nothing
    hub.factory = None


def _url(server: LiveServer) -> str:
    return server.url.replace("http://", "ws://") + P.PATH


def _jpeg(rgb: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".jpg", rgb[..., ::-1])
    assert ok
    return data.tobytes()


def _face_like(k: int) -> np.ndarray:
    img = np.full((240, 320, 3), 90, np.uint8)
    cv2.circle(img, (160 + k % 5, 120), 60, (200, 170, 150), -1)
    return img


def _refused(url: str, first: Any, code: int, words: str, *, then: list[Any] | None = None,
             headers: dict[str, str] | None = None, error_message: bool = True) -> Received:
    """Send messages; the server must answer with an error message and close with ``code``."""
    with connect(url, max_size=None, additional_headers=headers) as ws:
        got = Received()
        try:
            for message in [first, *(then or [])]:
                ws.send(message)
                if isinstance(message, str) and '"hello"' in message:
                    receive(ws, got, 0.3)
        except Exception:  # noqa: BLE001 (the server may close while we still send)
            pass
        until_closed(ws, got)
    assert got.close_code == code, (got.close_code, got.close_reason, got.texts)
    assert words in got.close_reason and "\n" not in got.close_reason and "Traceback" not in got.close_reason
    errors = got.of("error")
    if error_message and code != 1009:  # 1009 from the WebSocket layer itself carries no error message
        assert errors and errors[-1]["code"] == code and words in errors[-1]["message"], got.texts
    return got


def test_a_conversation_on_the_session_clock(live: LiveServer) -> None:
    """hello → ready; the participant talks (mic + camera in real time); say → said, say_start, a
    tone in the say window with bright frames at the same times; stats; stop → bye, close 1000."""
    ws, ready = open_live(_url(live), sample_rate=16000)
    assert ready["version"] == 1 and ready["sample_rate"] == K.SAMPLE_RATE and ready["render_fps"] == 30.0
    assert ready["mic_sample_rate"] == 16000 and ready["video"] == "jpeg" and ready["limits"]["max_camera_fps"] == 30
    assert [c["name"] for c in ready["motion_layout"]] == ["face", "head_pose"]
    mic = (np.sin(np.arange(16000 * 3) / 16000 * 2 * np.pi * 150) * 8000).astype(np.int16)
    sender = MicSender(ws, mic, 16000, frames=[_jpeg(_face_like(k)) for k in range(3)], fps=10)
    sender.start()
    got = receive(ws, Received(), 0.6)
    said_sent = time.monotonic()
    ws.send(json.dumps({"type": "say", "text": "Hello there, friend.", "tag": "first"}))
    receive(ws, got, 2.4)
    sender.join()
    assert sender.error is None
    ws.send(json.dumps({"type": "stop"}))
    until_closed(ws, got)
    assert got.close_code == 1000 and got.of("bye"), got.texts[-3:]

    session = FakeLiveSession.instances[0]
    assert session.thread == "avflow-generation"  # the server's one generation thread owns the session
    assert sum(len(a) for a in session.audio) == len(mic)  # every microphone sample reached the session
    assert 20 <= len(session.frames) <= 32 and all(t is not None and 0 <= t < 4 for _, t in session.frames)
    said = got.of("said")
    assert len(said) == 1 and said[0]["tag"] == "first"
    starts = [e for e in got.of("event") if e["event"] == "say_start" and e["id"] == said[0]["id"]]
    ends = [e for e in got.of("event") if e["event"] == "say_end"]
    assert len(starts) == 1 and len(ends) == 1
    # audio: contiguous on the session clock, index and t agree, and the tone sits in the say window
    indices = [(i, len(p)) for i, _, p, _ in got.audio]
    assert all(a + n == b for (a, n), (b, _) in zip(indices, indices[1:]))
    assert all(abs(t - i / K.SAMPLE_RATE) < 1e-9 for i, t, _, _ in got.audio)
    wav = got.wav(K.SAMPLE_RATE)
    t0, t1 = starts[0]["t"], ends[0]["t"]
    inside = wav[int(t0 * K.SAMPLE_RATE) + 10:int(t1 * K.SAMPLE_RATE) - 10]
    outside = np.concatenate([wav[:int(t0 * K.SAMPLE_RATE) - 10], wav[int(t1 * K.SAMPLE_RATE) + 10:]])
    assert np.sqrt(np.mean(inside ** 2)) > 0.15 and np.abs(outside).max() < 1e-3
    # frames: consecutive indices at render_fps, t = index / fps, bright exactly while the tone plays
    assert [f[0] for f in got.frames] == list(range(got.frames[0][0], got.frames[0][0] + len(got.frames)))
    for index, t, jpeg, _ in got.frames:
        assert abs(t - index / 30.0) < 1e-9
        level = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_GRAYSCALE)[8:, 8:].mean()
        if t0 + 0.05 < t < t1 - 0.05:
            assert level > 150, (t, level)
        elif t < t0 - 0.05 or t > t1 + 0.05:
            assert level < 80, (t, level)
    # the avatar answered continuously: audio kept coming (no gap between arrivals over 1 s on a
    # loaded 2-core machine; the fake session costs nothing, so this is the server's own delivery)
    arrivals = [a for *_, a in got.audio]
    assert max(np.diff(arrivals)) < 1.0 and got.audio[-1][0] / K.SAMPLE_RATE > 2.5
    first_tone = next(a for i, _, p, a in got.audio if np.abs(p).max() > 1000)
    assert first_tone - said_sent < 1.5
    stats = got.of("stats")
    assert len(stats) >= 2 and stats[-1]["link"]["camera_frames"] >= 20 and stats[-1]["link"]["frames_dropped"] == 0
    assert got.of("bye")[0]["stats"]["session"]["first_audio_latency"]


def test_motion_rows_instead_of_frames(live: LiveServer) -> None:
    ws, ready = open_live(_url(live), video="motion", sample_rate=48000)
    got = receive(ws, Received(), 0.8)
    ws.close()
    dim = sum(c["dim"] for c in ready["motion_layout"])
    assert got.motion and not got.frames
    rows = 0
    for index, t, data, _ in got.motion:
        assert abs(t - index / K.FPS) < 1e-9 and len(data) % dim == 0
        rows += len(data) // dim
    assert rows == got.motion[-1][0] + len(got.motion[-1][2]) // dim - got.motion[0][0]


def test_a_model_without_an_avatar_sends_motion_rows(live: LiveServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(live.state.service, "avatar", "none")
    ws, ready = open_live(_url(live), video="jpeg")
    got = receive(ws, Received(), 0.5)
    ws.close()
    assert ready["video"] == "motion" and got.motion and not got.frames


def test_a_second_session_is_refused_while_one_runs(live: LiveServer) -> None:
    first, _ = open_live(_url(live))
    got = _refused(_url(live), json.dumps({"type": "hello"}), P.CLOSE_BUSY, "already running")
    assert not got.audio
    status = httpx.get(live.url + "/v1/live/status").json()
    assert status["active"] and status["refused_busy"] >= 1
    receive(first, alive := Received(), 0.5)  # the first one is untouched
    assert alive.audio and alive.close_code is None
    first.close()


def test_a_client_that_leaves_mid_sentence_frees_the_server(live: LiveServer) -> None:
    ws, _ = open_live(_url(live))
    ws.send(json.dumps({"type": "say", "text": "A long sentence that will never be heard to its end. " * 3}))
    got = receive(ws, Received(), 0.6)
    assert got.of("said")
    ws.close()  # mid-sentence
    deadline = time.monotonic() + 5
    while live.app.state.avflow_live.active is not None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert live.app.state.avflow_live.active is None and FakeLiveSession.instances[0].closed
    ws, _ = open_live(_url(live))  # the next client is served
    receive(ws, again := Received(), 0.4)
    ws.close()
    assert again.audio


def test_a_client_that_never_reads_loses_frames_then_is_closed_and_memory_stays_bounded(live: LiveServer) -> None:
    """The fake avatar runs 8× faster than real time with big frames, so the socket's buffers fill in
    seconds; generation keeps stepping, frames are dropped first, then the connection is closed."""
    hub = live.app.state.avflow_live
    hub.factory = partial(FakeLiveSession, speed=8.0, frame_size=160, noisy=True)
    hub.outbox_bytes, hub.frame_limit = 400_000, 100_000
    try:
        ws = connect(_url(live), max_size=None, max_queue=1, compression=None).__enter__()
        ws.send(json.dumps({"type": "hello"}))
        link = None
        deadline = time.monotonic() + 30
        peaks, steps = [], []
        while time.monotonic() < deadline:  # never read; watch the server side
            link = hub.active or link
            if link is not None:
                peaks.append(link.outbox.bytes)
                steps.append(link.counters.steps)
                if link.stop.is_set():
                    break
            time.sleep(0.05)
        assert link is not None and link.stop.is_set(), ("the server kept a client that never reads",
                                                         peaks[-5:], steps[-5:], link.outbox.dropped)
        assert link.failure is not None and link.failure.code == P.CLOSE_POLICY
        assert "stopped reading" in link.failure.reason
        assert link.outbox.dropped["frame"] > 0  # frames went first
        assert link.outbox.peak_bytes <= hub.outbox_bytes + 64 * 1024  # bounded (plus one control message)
        assert steps[-1] > 20 and len(set(steps)) > 10  # generation never blocked on the socket
        got = until_closed(ws, Received())
        ws.close()
        assert got.close_code == P.CLOSE_POLICY and "stopped reading" in got.close_reason
        print(f"\nnever-reading client: outbox peak {link.outbox.peak_bytes / 1024:.0f} KiB, "
              f"{link.outbox.dropped['frame']} frames dropped, {link.counters.steps} steps, closed after "
              f"{link.now() / 8:.1f} s")
    finally:
        hub.outbox_bytes, hub.frame_limit = 1 << 20, 256 * 1024


@pytest.mark.parametrize(("messages", "code", "words"), [
    ([b"\x01\x00\x00\x00\x00\x00"], P.CLOSE_POLICY, "must be hello"),
    (["not json"], P.CLOSE_INVALID, "not valid JSON"),
    (['{"type": "say", "text": "hi"}'], P.CLOSE_POLICY, "must be hello, not say"),
    (['{"type": "hello", "sample_rate": 8000}'], P.CLOSE_POLICY, "8000 Hz is not supported"),
    (['{"type": "hello", "version": 2}'], P.CLOSE_POLICY, "version 2 is not supported"),
    (['{"type": "hello", "bogus": 1}'], P.CLOSE_INVALID, "bogus"),
    (['{"type": "hello"}', '{"type": "dance"}'], P.CLOSE_INVALID, "invalid message"),
    (['{"type": "hello"}', '{"type": "hello"}'], P.CLOSE_POLICY, "already received"),
    (['{"type": "hello"}', b"\x07\x00\x00\x00abc"], P.CLOSE_UNSUPPORTED, "unknown binary message kind 0x07"),
    (['{"type": "hello"}', b"\x01\x00"], P.CLOSE_INVALID, "no 4-byte header"),
    (['{"type": "hello"}', b"\x01\x00\x00\x00\x01\x02\x03"], P.CLOSE_INVALID, "not whole int16 samples"),
    (['{"type": "hello"}', b"\x02\x00\x00\x00" + b"\xff\xd8\xff\xc0" + bytes.fromhex("000b08c350ea600111ff") + b"\xff\xd9"],
     P.CLOSE_TOO_BIG, "60000×50000"),
])
def test_bad_messages_close_with_a_clear_code_and_reason(live: LiveServer, messages: list[Any], code: int,
                                                           words: str) -> None:
    _refused(_url(live), messages[0], code, words, then=messages[1:])
    ws, _ = open_live(_url(live))  # the server still serves
    ws.close()


def test_oversized_messages_are_refused(live: LiveServer) -> None:
    # over the server's WebSocket frame limit (the JSON body limit): the WebSocket layer closes with 1009
    limit = live.state.settings.max_body_bytes
    _refused(_url(live), json.dumps({"type": "hello"}), 1009, "", then=[b"\x01\x00\x00\x00" + bytes(limit + 2)])
    ws, _ = open_live(_url(live))  # and the server goes on serving
    ws.close()


def test_microphone_audio_faster_than_declared_is_refused(live: LiveServer) -> None:
    """48 kHz audio sent under a 16 kHz hello runs ahead of the clock three times as fast."""
    ws, _ = open_live(_url(live), sample_rate=16000)
    block = P.up_message(P.KIND_MIC, bytes(2 * 4800))  # 0.1 s at 48 kHz = 0.3 s at 16 kHz
    got = Received()
    try:
        for _ in range(30):
            ws.send(block)
            time.sleep(0.05)
    except Exception:  # noqa: BLE001 (closed while sending)
        pass
    until_closed(ws, got)
    assert got.close_code == P.CLOSE_POLICY and "faster than real time" in got.close_reason
    assert "sample rate" in got.of("error")[0]["message"]


def test_camera_problems_are_told_not_fatal(live: LiveServer) -> None:
    """A frame that is not a JPEG, frames faster than 30 fps, and a camera that shows no face: notices,
    and the session goes on."""
    ws, _ = open_live(_url(live))
    ws.send(P.up_message(P.KIND_CAMERA, b"GIF89a not a jpeg"))
    grey = _jpeg(np.full((240, 320, 3), 128, np.uint8))
    for _ in range(40):  # a burst over the one second of frames a client may send at once
        ws.send(P.up_message(P.KIND_CAMERA, grey))
    got = receive(ws, Received(), 0.1)
    for _ in range(6):  # no face in view for 0.6 s
        ws.send(P.up_message(P.KIND_CAMERA, grey))
        receive(ws, got, 0.1)
    for k in range(3):
        ws.send(P.up_message(P.KIND_CAMERA, _jpeg(_face_like(k))))
        time.sleep(0.1)
    deadline = time.monotonic() + 10
    while "face_found" not in [n["code"] for n in got.of("notice")] and time.monotonic() < deadline:
        receive(ws, got, 0.2)
    ws.close()
    codes = [n["code"] for n in got.of("notice")]
    assert {"camera_frame_unreadable", "camera_too_fast", "no_face", "face_found"} <= set(codes), codes
    assert codes.index("no_face") < codes.index("face_found")
    assert all("\n" not in n["message"] for n in got.of("notice"))
    assert got.close_code is None and got.audio
    session = FakeLiveSession.instances[0]
    assert 36 <= len(session.frames) <= 45  # 30 of the burst (+ what refilled while it was sent), 6 grey, 3 faces


def test_say_refusals_and_interrupt(live: LiveServer) -> None:
    ws, _ = open_live(_url(live))
    limit = live.state.settings.max_text_chars
    ws.send(json.dumps({"type": "say", "text": "x" * (limit + 1)}))
    ws.send(json.dumps({"type": "say", "text": "   "}))
    ws.send(json.dumps({"type": "say", "text": "This line is long enough to be cut off in the middle. " * 2}))
    got = receive(ws, Received(), 0.5)
    ws.send(json.dumps({"type": "interrupt"}))
    receive(ws, got, 1.2)
    ws.close()
    refused = [n["message"] for n in got.of("notice") if n["code"] == "say_refused"]
    assert len(refused) == 2 and f"at most {limit}" in refused[0] and "empty text" in refused[1]
    assert len(got.of("said")) == 1
    wav = got.wav(K.SAMPLE_RATE)
    assert np.abs(wav[-int(0.3 * K.SAMPLE_RATE):]).max() < 1e-3  # silent again after the interrupt
    session = FakeLiveSession.instances[0]
    assert session.lines and session.lines[0][2] - session.lines[0][1] < int(0.06 * 110 * K.FPS)


def test_cross_origin_pages_are_refused(live: LiveServer) -> None:
    # (refused here, or before the route by the server-wide Host/Origin middleware: close reason only)
    _refused(_url(live), json.dumps({"type": "hello"}), P.CLOSE_POLICY, "cross-origin",
             headers={"Origin": "https://evil.example"}, error_message=False)


def test_a_hello_that_never_comes_times_out(live: LiveServer, monkeypatch: pytest.MonkeyPatch) -> None:
    from avflow_cli.serve import live as live_module

    monkeypatch.setattr(live_module, "HELLO_TIMEOUT_S", 0.3)
    with connect(_url(live)) as ws:
        got = until_closed(ws, Received(), 5)
    assert got.close_code == P.CLOSE_POLICY and "within 0.3 s" in got.close_reason


def test_the_first_session_warms_the_server_up(live: LiveServer) -> None:
    """Lazy loads (tracker, recogniser, first chunk) happen in a throwaway session before the first
    live one starts its clock; later sessions skip it."""
    live.app.state.avflow_live.warmed = False
    for expected in (2, 3):
        ws, _ = open_live(_url(live))
        ws.close()
        assert len(FakeLiveSession.instances) == expected
    warm = FakeLiveSession.instances[0]
    assert warm.closed and len(warm.frames) == 1 and sum(len(a) for a in warm.audio) == 8000


def test_schema_and_status_endpoints(live: LiveServer) -> None:
    schema = httpx.get(live.url + "/v1/live/schema").json()
    assert schema == json.loads(json.dumps(P.json_schema()))
    status = httpx.get(live.url + "/v1/live/status").json()
    assert status["active"] is False and {"sessions", "refused_busy"} <= set(status)


def test_a_server_shutting_down_ends_the_live_session(serve_service: Any, serve_settings: Any, tmp_path: Any) -> None:
    """Ctrl-C while someone is live: the client is told the server goes away, the session is closed,
    the generation thread stops."""
    from serve_helpers import start_server, with_settings

    server = start_server(serve_service, with_settings(serve_settings, jobs_dir=tmp_path / "jobs"))
    hub = server.app.state.avflow_live
    hub.factory, hub.warmed = FakeLiveSession, True
    FakeLiveSession.instances.clear()
    ws, _ = open_live(_url(server))
    got = receive(ws, Received(), 0.3)
    assert got.audio
    server.stop()
    until_closed(ws, got, 10)
    ws.close()
    assert got.close_code in (1001, 1012), (got.close_code, got.close_reason)  # going away / service restart
    assert not server.thread.is_alive() and hub.active is None
    assert FakeLiveSession.instances[-1].closed
    assert not server.state.worker._thread.is_alive()


def test_a_session_waits_for_a_running_job_and_is_told_its_place(live: LiveServer) -> None:
    """The live session shares the server's one generation thread: a running job finishes first."""
    release = threading.Event()
    blocker = live.state.worker.submit(lambda ticket: release.wait(10), label="a job")
    ws = connect(_url(live), max_size=None).__enter__()
    ws.send(json.dumps({"type": "hello"}))
    first = json.loads(ws.recv(timeout=10))
    assert first == {"type": "queued", "position": 1}
    time.sleep(0.3)
    assert FakeLiveSession.instances == []  # nothing starts before the job is done
    release.set()
    assert blocker.done.wait(10)
    while (message := json.loads(ws.recv(timeout=10)))["type"] != "ready":
        assert message["type"] == "queued"
    got = receive(ws, Received(), 0.3)
    ws.close()
    assert got.audio
