"""A small Python client of ``/v1/live`` for the tests (the page's live.js does the same in a browser)."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from avflow_cli.serve import live_protocol as P


@dataclass
class Received:
    """Everything a client got, in arrival order, with its arrival time (client monotonic seconds)."""

    texts: list[dict[str, Any]] = field(default_factory=list)
    audio: list[tuple[int, float, np.ndarray, float]] = field(default_factory=list)  # index, t, int16 pcm, arrived
    frames: list[tuple[int, float, bytes, float]] = field(default_factory=list)
    motion: list[tuple[int, float, np.ndarray, float]] = field(default_factory=list)
    close_code: int | None = None
    close_reason: str = ""

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.texts if m["type"] == kind]

    def wav(self, sample_rate: int) -> np.ndarray:
        """The avatar's audio laid out on the session clock (gaps left silent), float32."""
        if not self.audio:
            return np.zeros(0, np.float32)
        end = max(i + len(p) for i, _, p, _ in self.audio)
        out = np.zeros(end, np.float32)
        for index, _, pcm, _ in self.audio:
            out[index:index + len(pcm)] = pcm / 32768.0
        return out


def open_live(ws_url: str, **hello: Any) -> tuple[ClientConnection, dict[str, Any]]:
    """Connect, send hello, wait for ready (queued messages are skipped)."""
    ws = connect(ws_url, max_size=None, open_timeout=30).__enter__()  # closed by the caller
    ws.send(json.dumps({"type": "hello", **hello}))
    while True:
        message = json.loads(ws.recv(timeout=60))
        if message["type"] == "ready":
            return ws, message
        assert message["type"] == "queued", message


def receive(ws: ClientConnection, got: Received, seconds: float, *, stop_on_close: bool = True) -> Received:
    """Read for ``seconds`` (or until the server closes)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            data = ws.recv(timeout=max(0.01, deadline - time.monotonic()))
        except TimeoutError:
            break
        except ConnectionClosed as closed:
            got.close_code = closed.rcvd.code if closed.rcvd else None
            got.close_reason = closed.rcvd.reason if closed.rcvd else ""
            if stop_on_close:
                break
            raise
        now = time.monotonic()
        if isinstance(data, str):
            got.texts.append({**json.loads(data), "_arrived": now})
            continue
        kind, index, t, payload = P.parse_down(data)
        if kind == P.KIND_AUDIO:
            got.audio.append((index, t, np.frombuffer(payload, "<i2"), now))
        elif kind == P.KIND_FRAME:
            got.frames.append((index, t, payload, now))
        elif kind == P.KIND_MOTION:
            got.motion.append((index, t, np.frombuffer(payload, "<f4"), now))
        else:
            raise AssertionError(f"unknown down kind {kind:#x}")
    return got


def until_closed(ws: ClientConnection, got: Received, timeout: float = 30.0) -> Received:
    receive(ws, got, timeout)
    assert got.close_code is not None, f"the server did not close within {timeout} s; got {got.texts[-3:]}"
    return got


class MicSender(threading.Thread):
    """Sends int16 PCM (and, optionally, JPEG frames) in real time, like a browser's microphone."""

    def __init__(self, ws: ClientConnection, pcm: np.ndarray, rate: int, *, frames: list[bytes] | None = None,
                 fps: float = 10.0, block_s: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.ws, self.pcm, self.rate, self.frames, self.fps, self.block = ws, pcm, rate, frames or [], fps, block_s
        self.error: Exception | None = None

    def run(self) -> None:
        step = int(self.rate * self.block)
        start = time.monotonic()
        sent_frames = 0
        try:
            for k in range(0, len(self.pcm), step):
                due = start + k / self.rate
                time.sleep(max(0.0, due - time.monotonic()))
                self.ws.send(P.up_message(P.KIND_MIC, self.pcm[k:k + step].astype("<i2").tobytes()))
                while self.frames and sent_frames < (time.monotonic() - start) * self.fps:
                    self.ws.send(P.up_message(P.KIND_CAMERA, self.frames[sent_frames % len(self.frames)]))
                    sent_frames += 1
        except (ConnectionClosed, OSError) as err:
            self.error = err
