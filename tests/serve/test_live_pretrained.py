"""``WS /v1/live`` with the real session and the shipped model (``Synthesizer("pretrained")``): a
conversation with a said line and an interrupted one, a second client refused while it runs, and
a client that leaves mid-sentence freeing the server — on the real clock, so slow on this CPU."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from live_client import MicSender, Received, open_live, receive, until_closed
from serve_helpers import LiveServer, start_server
from websockets.sync.client import connect

from avflow_cli import constants as K
from avflow_cli.serve import live_protocol as P
from avflow_cli.serve.settings import ServeSettings

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pretrained_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    from avflow_cli.serve.engine import ModelService

    service = ModelService.load("pretrained", device="cpu")
    server = start_server(service, ServeSettings(jobs_dir=tmp_path_factory.mktemp("jobs")))
    yield server
    server.stop()


def _url(server: LiveServer) -> str:
    return server.url.replace("http://", "ws://") + P.PATH


def _face_jpeg(k: int) -> bytes:
    img = np.full((240, 320, 3), (70, 80, 90), np.uint8)
    cv2.ellipse(img, (160, 125), (62, 80), 0, 0, 360, (150, 175, 215), -1)
    cv2.ellipse(img, (160, 160), (26, 4 + (k % 5) * 3), 0, 0, 180, (60, 60, 160), -1)
    return cv2.imencode(".jpg", img)[1].tobytes()


def _wait_for(ws: Any, got: Received, test: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not test(got):
        assert time.monotonic() < deadline, f"timed out; last messages {got.texts[-3:]}"
        receive(ws, got, 0.5)


def test_a_conversation_with_the_shipped_model(pretrained_server: LiveServer, tmp_path: Path) -> None:
    ws, ready = open_live(_url(pretrained_server), sample_rate=16000)
    assert ready["guidance"] and ready["render_fps"] == 30.0
    t = np.arange(16000 * 12) / 16000
    voice = (0.2 * np.sin(2 * np.pi * 140 * t) * (np.sin(2 * np.pi * 3 * t) > 0) * 32767).astype(np.int16)
    sender = MicSender(ws, voice, 16000, frames=[_face_jpeg(k) for k in range(5)], fps=10)
    sender.start()
    got = receive(ws, Received(), 1.5)
    ws.send(json.dumps({"type": "say", "text": "Good morning. How are you today?"}))
    _wait_for(ws, got, lambda g: any(e["event"] == "say_end" for e in g.of("event")), 120)

    # a second client while this one runs is refused, and this one goes on
    with connect(_url(pretrained_server)) as second:
        second.send(json.dumps({"type": "hello"}))
        refused = until_closed(second, Received(), 30)
    assert refused.close_code == P.CLOSE_BUSY and "already running" in refused.close_reason

    ws.send(json.dumps({"type": "say", "text": "This is a much longer sentence that will be cut off before it ends, "
                                              "because the participant interrupts me."}))
    _wait_for(ws, got, lambda g: sum(e["event"] == "say_start" for e in g.of("event")) == 2, 120)
    ws.send(json.dumps({"type": "interrupt"}))
    _wait_for(ws, got, lambda g: any(e["event"] == "interrupted" for e in g.of("event")), 120)
    receive(ws, got, 1.0)
    ws.send(json.dumps({"type": "stop"}))
    until_closed(ws, got, 120)
    sender.join(timeout=1)

    assert got.close_code == 1000 and got.of("bye")
    said = [m["id"] for m in got.of("said")]
    events = [(e["event"], e["id"], e["t"]) for e in got.of("event")]
    first = [e for e in events if e[1] == said[0]]
    assert [e[0] for e in first] == ["say_start", "say_end"] and first[1][2] - first[0][2] > 0.8
    second_line = [e for e in events if e[1] == said[1]]
    assert [e[0] for e in second_line[:2]] == ["say_start", "interrupted"]
    # the audio runs on without holes; frames are consecutive at 30 fps and stamped index / 30
    indices = [(i, len(p)) for i, _, p, _ in got.audio]
    assert all(a + n == b for (a, n), (b, _) in zip(indices, indices[1:]))
    assert [f[0] for f in got.frames] == list(range(got.frames[0][0], got.frames[0][0] + len(got.frames)))
    assert all(abs(t - i / 30.0) < 1e-9 for i, t, _, _ in got.frames)
    wav = got.wav(K.SAMPLE_RATE)
    rms = lambda a, b: float(np.sqrt(np.mean(wav[int(a * K.SAMPLE_RATE):int(b * K.SAMPLE_RATE)] ** 2)))  # noqa: E731
    line = rms(first[0][2], first[1][2])
    cut = second_line[1][2]
    assert line > 0.02 and rms(cut + 0.3, len(wav) / K.SAMPLE_RATE) < line / 3  # silent again after the interrupt
    stats = got.of("bye")[0]["stats"]
    assert stats["link"]["camera_frames"] > 10 and stats["session"]["audio_in_s"] > 2  # (12 s sent; then silence)
    print(f"\nshipped model live: {json.dumps(stats['session'])[:400]}\nlink {stats['link']}")


def test_a_camera_without_a_face_is_told(pretrained_server: LiveServer) -> None:
    """The real tracker sees an empty room: the participant is told once (and the session goes on)."""
    ws, _ = open_live(_url(pretrained_server))
    empty = cv2.imencode(".jpg", np.full((240, 320, 3), (90, 100, 110), np.uint8))[1].tobytes()
    got = Received()
    deadline = time.monotonic() + 60
    while "no_face" not in [n["code"] for n in got.of("notice")]:
        assert time.monotonic() < deadline, got.of("notice")
        ws.send(P.up_message(P.KIND_CAMERA, empty))
        receive(ws, got, 0.1)
    receive(ws, got, 0.5)
    ws.close()
    notice = next(n for n in got.of("notice") if n["code"] == "no_face")
    assert "no face" in notice["message"] and got.audio and got.close_code is None


def test_a_client_that_leaves_mid_sentence_frees_the_server(pretrained_server: LiveServer) -> None:
    hub = pretrained_server.app.state.avflow_live
    ws, _ = open_live(_url(pretrained_server))
    ws.send(json.dumps({"type": "say", "text": "I will keep talking for quite a while, so leave whenever you like."}))
    got = Received()
    _wait_for(ws, got, lambda g: any(e["event"] == "say_start" for e in g.of("event")), 120)
    ws.close()  # mid-sentence
    deadline = time.monotonic() + 30
    while (hub.active is not None or pretrained_server.state.worker.busy) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert hub.active is None and not pretrained_server.state.worker.busy
    ws, _ = open_live(_url(pretrained_server))  # the next person is served at once
    again = receive(ws, Received(), 1.5)
    ws.close()
    assert again.audio and again.close_code is None
