"""The live protocol's pieces without a server: framing, JPEG sizes, the outbox's drop policy,
the Origin check, render-frame indices and the JSON schema in docs/."""

from __future__ import annotations

import asyncio
import json
import struct
from pathlib import Path

import cv2
import numpy as np
import pytest
from pydantic import ValidationError

from avflow_cli import constants as K
from avflow_cli.serve import live_protocol as P
from avflow_cli.serve.live import Outbox, render_indices

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "docs" / "live_protocol.schema.json"


def _jpeg(w: int, h: int) -> bytes:
    ok, data = cv2.imencode(".jpg", np.random.default_rng(0).integers(0, 255, (h, w, 3), dtype=np.uint8))
    assert ok
    return data.tobytes()


def test_jpeg_size_reads_the_frame_header_and_refuses_what_is_not_a_jpeg() -> None:
    assert P.jpeg_size(_jpeg(320, 240)) == (320, 240)
    assert P.jpeg_size(_jpeg(17, 9)) == (17, 9)
    ok, png = cv2.imencode(".png", np.zeros((8, 8, 3), np.uint8))
    assert P.jpeg_size(png.tobytes()) is None
    assert P.jpeg_size(b"") is None and P.jpeg_size(b"\xff\xd8") is None
    assert P.jpeg_size(_jpeg(320, 240)[:20]) is None  # cut before the frame header
    # a tiny file that declares 60000 × 50000 pixels: its size is read, nothing is decoded
    bomb = b"\xff\xd8" + b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, 50000, 60000, 1) + b"\x01\x11\x00" + b"\xff\xd9"
    assert P.jpeg_size(bomb) == (60000, 50000)


def test_binary_messages_round_trip() -> None:
    pcm = (np.arange(100, dtype=np.int16) - 50).astype("<i2")
    data = P.down_message(P.KIND_AUDIO, 22050, 1.0, pcm.tobytes())
    assert len(data) == 16 + 200
    kind, index, t, payload = P.parse_down(data)
    assert (kind, index, t) == (P.KIND_AUDIO, 22050, 1.0)
    np.testing.assert_array_equal(np.frombuffer(payload, "<i2"), pcm)
    up = P.up_message(P.KIND_CAMERA, b"jpeg")
    assert up[:4] == b"\x02\x00\x00\x00" and up[4:] == b"jpeg"


def test_client_messages_are_typed_and_strict() -> None:
    hello = P.CLIENT_MESSAGE.validate_json('{"type": "hello", "sample_rate": 48000, "video": "motion"}')
    assert isinstance(hello, P.Hello) and hello.sample_rate == 48000 and hello.version == P.VERSION
    assert isinstance(P.CLIENT_MESSAGE.validate_json('{"type": "say", "text": "hi"}'), P.Say)
    for bad in ('{"type": "say"}', '{"type": "dance"}', '{"type": "stop", "now": true}',
                '{"type": "hello", "video": "mp4"}'):
        with pytest.raises(ValidationError):
            P.CLIENT_MESSAGE.validate_json(bad)


def test_the_schema_in_docs_is_the_one_the_server_serves() -> None:
    """docs/live_protocol.schema.json is written from the models (regenerate: see its test's message)."""
    schema = P.json_schema()
    assert set(schema["server_messages"]) == {"Queued", "Ready", "Said", "Event", "Stats", "Notice", "Error", "Bye"}
    assert {"Hello", "Say", "Interrupt", "Stop"} <= set(schema["client_messages"]["$defs"])
    written = json.loads(SCHEMA_FILE.read_text())
    assert written == json.loads(json.dumps(schema)), (
        "docs/live_protocol.schema.json is stale: python -c 'import json; from avflow_cli.serve.live_protocol "
        "import json_schema; print(json.dumps(json_schema(), indent=1))' > docs/live_protocol.schema.json")


def test_render_indices_tile_the_timeline_without_gaps_or_repeats() -> None:
    covered: list[int] = []
    for start in range(0, 16 * 40, 16):
        first, count = render_indices(start, 16, 30.0)
        covered.extend(range(first, first + count))
        for k in range(first, first + count):  # every frame's time lies inside its chunk
            assert start <= k / 30.0 * K.FPS < start + 16 + 1e-6
    assert covered == list(range(len(covered)))
    assert len(covered) == int(np.ceil(16 * 40 / K.FPS * 30.0))


def test_outbox_drops_frames_first_and_flags_a_client_that_stopped_reading() -> None:
    loop = asyncio.new_event_loop()
    try:
        box = Outbox(loop, max_bytes=10_000, frame_limit=3_000)
        assert box.put("ready")
        assert box.put(b"a" * 2_000, "audio")
        assert box.room_for_frames() and box.put(b"f" * 900, "frame")
        assert not box.put(b"f" * 900, "frame") and box.dropped["frame"] == 1  # over the frame limit
        assert box.put(b"a" * 6_000, "audio") and not box.stalled  # audio still fits
        assert not box.room_for_frames() and not box.put('{"type": "stats"}', "stats")
        assert not box.put(b"a" * 2_000, "audio") and box.stalled  # nothing more fits: the client is not reading
        assert box.put('{"type": "event"}')  # control messages are never dropped
        assert box.peak_bytes <= 10_000 + len('{"type": "event"}')
        items = [loop.run_until_complete(box.get()) for _ in range(5)]
        assert items[0] == "ready" and items[-1] == '{"type": "event"}' and box.bytes == 0
    finally:
        loop.close()


