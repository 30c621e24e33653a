"""``WS /v1/live``: the live avatar over the network (protocol: :mod:`.live_protocol`, docs/serve.md "Live").

One connection = one :class:`avflow_cli.live.LiveSession`. Three parts run side by side:

- the **generation loop** (:meth:`LiveLink.run`), a task of the server's one
  :class:`~avflow_cli.serve.worker.GenerationWorker` thread, owns the session: every ``TICK_S`` it
  hands the session what arrived (microphone PCM, camera frames, ``say``/``interrupt``), calls
  ``step()`` on the session clock and puts what became final into the outbox. It never waits for
  the socket;
- the **receiver** (the connection's coroutine) checks each message and queues it for the loop;
- the **sender** drains the :class:`Outbox` into the socket.

Back-pressure: the outbox is bounded in bytes. A client that reads too slowly loses avatar
*frames* first (they are not even rendered while the outbox is over ``frame_limit``); when not
even the audio fits, the client has stopped reading and the connection is closed (1008) — memory
never grows and generation never blocks. One live session at a time: the CPU serves one, so a
second connection is refused with 1013 ("try again later") while one runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from fastapi import APIRouter, FastAPI, WebSocket, WebSocketDisconnect
from pydantic import ValidationError

from avflow_cli import constants as K
from avflow_cli.errors import AvflowError
from avflow_cli.serve import live_protocol as P
from avflow_cli.serve.worker import QueueFull, Ticket

log = logging.getLogger("avflow.serve")

TICK_S = 0.01  # how often the loop steps the session (a late step eats into the compute margin; it catches up on its own clock when a step is slow)
STATS_EVERY_S = 1.0
MAX_STEP_S = 0.25  # session seconds one step() may advance (a slow CPU falls behind smoothly, see run())
HELLO_TIMEOUT_S = 10.0
MAX_MESSAGE_BYTES = 256 * 1024  # one microphone or camera message (a 320×240 JPEG is ≈ 15 KiB)
MIN_MIC_RATE, MAX_MIC_RATE = 16000, 48000
MAX_CAMERA_FPS = 30.0
MAX_CAMERA_PIXELS = (1280, 960)
MAX_AUDIO_LEAD_S = 2.0  # microphone audio may run this far ahead of the session clock (network bursts)
OUTBOX_BYTES = 1 << 20  # ≈ 23 s of avatar audio: a client this far behind has stopped reading
FRAME_LIMIT_BYTES = 256 * 1024  # frames are dropped (not rendered) while more than this waits unsent
INBOX_BYTES = 4 << 20
JPEG_QUALITY = 80
RENDER_FPS = 30.0  # avatar pictures per second sent down (the preview's rate)
FRAME_SIZE = 256  # pixels (square) of the avatar pictures
FACE_WINDOW = 5  # tracked camera frames without a face before the participant is told

SessionFactory = Callable[..., Any]  # (synth, sample_rate=, seed=, clock=) -> a LiveSession


class Outbox:
    """Bounded queue of outgoing messages between the generation thread and the socket's coroutine."""

    def __init__(self, loop: asyncio.AbstractEventLoop, *, max_bytes: int = OUTBOX_BYTES,
                 frame_limit: int = FRAME_LIMIT_BYTES) -> None:
        self.loop, self.max_bytes, self.frame_limit = loop, max_bytes, frame_limit
        self._items: deque[str | bytes] = deque()
        self._lock = threading.Lock()
        self._wake = asyncio.Event()
        self.bytes = self.peak_bytes = 0
        self.dropped = {"frame": 0, "stats": 0, "audio": 0}
        self.stalled = False  # audio did not fit: the client stopped reading

    def room_for_frames(self) -> bool:
        with self._lock:
            return self.bytes < self.frame_limit

    def put(self, item: str | bytes, kind: str = "control") -> bool:
        """Thread-safe; never blocks. ``kind``: control (always kept), stats, audio, frame."""
        size = len(item)
        with self._lock:
            if kind in ("frame", "stats") and self.bytes + size > self.frame_limit:
                self.dropped[kind] += 1
                return False
            if kind == "audio" and self.bytes + size > self.max_bytes:
                self.dropped["audio"] += 1
                self.stalled = True
                return False
            self._items.append(item)
            self.bytes += size
            self.peak_bytes = max(self.peak_bytes, self.bytes)
        self.loop.call_soon_threadsafe(self._wake.set)
        return True

    async def get(self) -> str | bytes:
        while True:
            with self._lock:
                if self._items:
                    item = self._items.popleft()
                    self.bytes -= len(item)
                    return item
                self._wake.clear()
            await self._wake.wait()


@dataclass
class LinkCounters:
    """What crossed the connection (the ``link`` part of ``stats``)."""

    mic_samples: int = 0
    mic_messages: int = 0
    camera_frames: int = 0
    camera_dropped: int = 0
    camera_unreadable: int = 0
    audio_sent_s: float = 0.0
    frames_rendered: int = 0
    frames_sent: int = 0
    motion_rows_sent: int = 0
    input_before_ready: int = 0
    steps: int = 0
    step_seconds: float = 0.0
    step_max: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


class LiveHub:
    """The server's live sessions: at most one runs; counters for /v1/live/status."""

    def __init__(self, state: Any, factory: SessionFactory | None = None) -> None:
        self.state = state
        self.factory = factory or _default_factory
        self.active: LiveLink | None = None
        self.outbox_bytes, self.frame_limit = OUTBOX_BYTES, FRAME_LIMIT_BYTES
        self.warmed = False  # the first session warms the process up (see LiveLink._warm_up)
        self._lock = threading.Lock()
        self.counts = {"sessions": 0, "refused_busy": 0, "closed_by_client": 0, "errors": 0}

    async def claim(self, link: LiveLink, ending_wait_s: float = 3.0) -> bool:
        """Make ``link`` the running session; False while another runs. A session that is already
        ending (its client left or was closed a moment ago) is waited for, so a reconnect succeeds."""
        deadline = time.monotonic() + ending_wait_s
        while True:
            with self._lock:
                if self.active is None:
                    self.active = link
                    self.counts["sessions"] += 1
                    return True
                ending = self.active.stop.is_set()
            if not ending or time.monotonic() > deadline:
                with self._lock:
                    self.counts["refused_busy"] += 1
                return False
            await asyncio.sleep(0.02)

    def release(self, link: LiveLink) -> None:
        with self._lock:
            if self.active is link:
                self.active = None


def _default_factory(synth: Any, **kwargs: Any) -> Any:
    from avflow_cli.live import LiveSession

    return LiveSession(synth, **kwargs)


class _Close(Exception):
    """End the connection with this close code and one-line reason."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code, self.reason = code, reason


class LiveLink:
    """One live connection: the inbox the receiver fills, the loop that owns the session, the outbox."""

    def __init__(self, hub: LiveHub, hello: P.Hello, outbox: Outbox) -> None:
        self.hub, self.hello, self.outbox = hub, hello, outbox
        self.id = uuid.uuid4().hex[:12]
        self.counters = LinkCounters()
        self._inbox: deque[tuple[str, Any, float]] = deque()
        self._inbox_bytes = 0
        self._lock = threading.Lock()
        self.stop = threading.Event()  # the client left or asked to stop: end the loop
        self.flush = False  # stop by request: send what close() flushes, then bye
        self.ready = threading.Event()
        self.failure: _Close | None = None
        self.t0: float | None = None
        self._session_now: Callable[[], float] | None = None
        self.render_fps = RENDER_FPS
        self.video = hello.video  # what goes down: jpeg, motion or none (ready.video)
        self.stepped_to = 0.0  # session time the last step() advanced to
        self._face_seen: deque[bool] = deque(maxlen=FACE_WINDOW)
        self._face_counts = (0, 0)
        self._last_camera = 0.0
        self._camera_budget = MAX_CAMERA_FPS
        self._notified: set[str] = set()

    # --- clock -----------------------------------------------------------------------------------
    def now(self) -> float:
        """Session seconds: the session's clock once it runs (``ready.t`` is its value when ready was sent)."""
        if self._session_now is not None:
            return float(self._session_now())
        return 0.0 if self.t0 is None else time.monotonic() - self.t0

    # --- receiver side (event loop) ------------------------------------------------------------
    def _queue(self, kind: str, item: Any, size: int) -> None:
        with self._lock:
            if self._inbox_bytes + size > INBOX_BYTES:
                raise _Close(P.CLOSE_POLICY, "the server cannot take input this fast (input queue full)")
            self._inbox.append((kind, item, self.now()))
            self._inbox_bytes += size

    def receive_binary(self, data: bytes) -> None:
        if len(data) > MAX_MESSAGE_BYTES:
            raise _Close(P.CLOSE_TOO_BIG, f"binary message of {len(data)} bytes; at most {MAX_MESSAGE_BYTES}")
        if len(data) < P.UP_HEADER:
            raise _Close(P.CLOSE_INVALID, f"binary message of {len(data)} bytes has no 4-byte header")
        kind, payload = data[0], data[P.UP_HEADER:]
        if kind not in (P.KIND_MIC, P.KIND_CAMERA):
            raise _Close(P.CLOSE_UNSUPPORTED, f"unknown binary message kind 0x{kind:02x} (0x01 microphone, 0x02 camera)")
        if not self.ready.is_set():
            self.counters.input_before_ready += 1
            return
        if kind == P.KIND_MIC:
            self._mic(payload)
        else:
            self._camera(payload)

    def _mic(self, payload: bytes) -> None:
        if len(payload) % 2:
            raise _Close(P.CLOSE_INVALID, f"microphone payload of {len(payload)} bytes is not whole int16 samples")
        rate = self.hello.sample_rate
        self.counters.mic_samples += len(payload) // 2
        self.counters.mic_messages += 1
        lead = self.counters.mic_samples / rate - self.now()
        if lead > MAX_AUDIO_LEAD_S:
            raise _Close(P.CLOSE_POLICY, f"microphone audio arrives faster than real time ({lead:.1f} s ahead of the "
                                         f"session clock at the declared {rate} Hz): is the sample rate right?")
        self._queue("mic", payload, len(payload))

    def _camera(self, payload: bytes) -> None:
        size = P.jpeg_size(payload)
        if size is None:
            self.counters.camera_unreadable += 1
            self.notice("camera_frame_unreadable", "a camera frame is not a JPEG image; it was dropped", once=True)
            return
        if size[0] * size[1] > MAX_CAMERA_PIXELS[0] * MAX_CAMERA_PIXELS[1] or size[0] <= 0 or size[1] <= 0:
            raise _Close(P.CLOSE_TOO_BIG, f"camera frame of {size[0]}×{size[1]} pixels; at most "
                                          f"{MAX_CAMERA_PIXELS[0]}×{MAX_CAMERA_PIXELS[1]}")
        now = self.now()
        # a bucket of one second of frames: bursts after a stall pass, a sustained rate over the limit does not
        self._camera_budget = min(MAX_CAMERA_FPS, self._camera_budget + (now - self._last_camera) * MAX_CAMERA_FPS)
        self._last_camera = now
        if self._camera_budget < 1.0:
            self.counters.camera_dropped += 1
            self.notice("camera_too_fast", f"camera frames come faster than {MAX_CAMERA_FPS:g} per second; "
                                           "extra frames are dropped", once=True)
            return
        self._camera_budget -= 1.0
        self._queue("camera", payload, len(payload))

    def receive_control(self, message: Any) -> None:
        if isinstance(message, P.Hello):
            raise _Close(P.CLOSE_POLICY, "hello was already received (send it once, first)")
        if isinstance(message, P.Say):
            limit = self.hub.state.settings.max_text_chars
            if len(message.text) > limit:
                self.notice("say_refused", f"the line has {len(message.text)} characters; at most {limit}")
                return
            self._queue("say", message, len(message.text))
        elif isinstance(message, P.Interrupt):
            self._queue("interrupt", None, 0)
        elif isinstance(message, P.Stop):
            self.flush = True
            self.stop.set()

    def notice(self, code: str, message: str, *, once: bool = False) -> None:
        if once and code in self._notified:
            return
        self._notified.add(code)
        self.outbox.put(P.Notice(code=code, message=message, t=round(self.now(), 4)).model_dump_json())

    def _take_inbox(self) -> list[tuple[str, Any, float]]:
        with self._lock:
            items = list(self._inbox)
            self._inbox.clear()
            self._inbox_bytes = 0
        return items

    # --- generation loop (worker thread) ----------------------------------------------------------
    def run(self, ticket: Ticket) -> None:
        """The worker task: create the session, step it on its clock until stopped, flush, say bye."""
        session = None
        try:
            if self.stop.is_set() or ticket.cancelled.is_set():
                return
            service = self.hub.state.service
            if not self.hub.warmed:
                self._warm_up(service)
            session = self.hub.factory(service.synth, sample_rate=self.hello.sample_rate, seed=self.hello.seed,
                                       clock=time.monotonic)
            self.t0 = time.monotonic()
            self._session_now = getattr(session, "now", None)  # the session's own clock (started in its constructor)
            if self.video == "jpeg" and not service.can_render:  # no avatar to draw: motion rows (ready says so)
                self.video = "motion"
            self.outbox.put(self._ready(service).model_dump_json())
            self.ready.set()
            next_stats = STATS_EVERY_S
            while not self.stop.is_set() and not ticket.cancelled.is_set():
                tick = time.monotonic()
                self._feed(session)
                started = time.perf_counter()
                # at most MAX_STEP_S of session time per step: when the CPU cannot keep up, output keeps
                # flowing chunk by chunk (and input keeps being fed) instead of in ever longer bursts
                self.stepped_to = min(self.now(), self.stepped_to + MAX_STEP_S)
                outputs = session.step(self.stepped_to)
                took = time.perf_counter() - started
                self.counters.steps += 1
                self.counters.step_seconds += took
                self.counters.step_max = max(self.counters.step_max, took)
                for output in outputs:
                    self._emit(session, output)
                if self.outbox.stalled:
                    raise _Close(P.CLOSE_POLICY, "the client stopped reading: the avatar's audio could not be "
                                                 f"queued ({self.outbox.max_bytes // 1024} KiB waited unsent)")
                if self.now() >= next_stats:
                    self.outbox.put(self._stats(session).model_dump_json(), "stats")
                    next_stats = self.now() + STATS_EVERY_S
                self._notice_face(session)
                time.sleep(max(0.0, TICK_S - (time.monotonic() - tick)))
            closed, session = session, None  # closed here: the finally must not close it again
            outputs = closed.close(now=self.stepped_to)  # flush what is under way; no catching up
            if self.flush:  # stopped by the client: what close() flushed, then bye
                for output in outputs:
                    self._emit(closed, output)
                self.outbox.put(P.Bye(t=round(self.now(), 4), stats=self._stats(closed)).model_dump_json())
        except _Close as err:
            self.failure = err
        except AvflowError as err:
            self.failure = _Close(P.CLOSE_POLICY, str(err))
        except Exception:  # noqa: BLE001 (a bug: logged with its traceback, the client gets one line)
            log.exception("live session %s failed", self.id)
            self.failure = _Close(P.CLOSE_ERROR, "internal server error in the live session (details are in the server log)")
        finally:
            if session is not None:  # the client left or the loop failed: end it, output discarded
                with contextlib.suppress(Exception):
                    session.close(now=self.stepped_to)
            self.stop.set()
            self.outbox.loop.call_soon_threadsafe(self.outbox._wake.set)

    def _warm_up(self, service: Any) -> None:
        """Once per server: a throwaway session hears silence and sees a blank frame, so the lazy loads
        (face tracker, recogniser, the first sampler chunk) are not paid on a live session's clock."""
        started = time.perf_counter()
        warm = self.hub.factory(service.synth, sample_rate=self.hello.sample_rate, seed=0, clock=time.monotonic)
        warm.push_audio(np.zeros(self.hello.sample_rate // 2, np.int16), sample_rate=self.hello.sample_rate)
        warm.push_frame(np.full((240, 320, 3), 128, np.uint8), t=0.0)
        warm.step(0.5)
        warm.close(now=0.5)
        self.hub.warmed = True
        log.info("live sessions warmed up in %.2f s", time.perf_counter() - started)

    def _ready(self, service: Any) -> P.Ready:
        return P.Ready(
            session=self.id, t=round(self.now(), 4), sample_rate=K.SAMPLE_RATE, mic_sample_rate=self.hello.sample_rate, fps=K.FPS,
            render_fps=self.render_fps, video=self.video,
            motion_layout=[P.MotionColumns(**c) for c in service.motion_layout()], guidance=service.guided,
            limits=P.Limits(max_message_bytes=MAX_MESSAGE_BYTES, max_say_chars=self.hub.state.settings.max_text_chars,
                            max_camera_fps=MAX_CAMERA_FPS, max_audio_lead_s=MAX_AUDIO_LEAD_S))

    def _feed(self, session: Any) -> None:
        """Hand the session what arrived since the last tick, in order."""
        import cv2

        for kind, item, t in self._take_inbox():
            if kind == "mic":
                session.push_audio(np.frombuffer(item, "<i2"), sample_rate=self.hello.sample_rate)
            elif kind == "camera":
                bgr = cv2.imdecode(np.frombuffer(item, np.uint8), cv2.IMREAD_COLOR)
                if bgr is None:
                    self.counters.camera_unreadable += 1
                    self.notice("camera_frame_unreadable", "a camera frame could not be decoded; it was dropped",
                                once=True)
                    continue
                self.counters.camera_frames += 1
                session.push_frame(np.ascontiguousarray(bgr[..., ::-1]), t=t)
            elif kind == "say":
                try:
                    say_id = session.say(item.text)
                except AvflowError as err:
                    self.notice("say_refused", f"cannot say that: {err}")
                    continue
                self.outbox.put(P.Said(id=str(say_id), tag=item.tag, t=round(self.now(), 4)).model_dump_json())
            elif kind == "interrupt":
                session.interrupt()

    def _emit(self, session: Any, output: Any) -> None:
        """One LiveOutput → events, audio, then the picture (frames only while the client keeps up)."""
        for event in output.events:
            self.outbox.put(P.Event(event=event["type"], id=str(event["id"]), t=round(float(event["t"]), 4),
                                    emitted_at=round(float(output.emitted_at), 4)).model_dump_json())
        wav = np.asarray(output.wav, np.float32)
        if len(wav):
            pcm = (np.clip(wav, -1.0, 1.0) * 32767.0).round().astype("<i2").tobytes()
            t = output.wav_start / K.SAMPLE_RATE
            self.outbox.put(P.down_message(P.KIND_AUDIO, int(output.wav_start), t, pcm), "audio")
            self.counters.audio_sent_s += len(wav) / K.SAMPLE_RATE
        n = len(output.face)
        if not n or self.video == "none":
            return
        if self.video == "motion":
            rows = np.concatenate([np.asarray(output.face, np.float32), np.asarray(output.head_pose, np.float32)], axis=1)
            self.outbox.put(P.down_message(P.KIND_MOTION, int(output.start), output.start / K.FPS,
                                           rows.astype("<f4").tobytes()), "frame")
            self.counters.motion_rows_sent += n
            return
        if not self.outbox.room_for_frames():  # the client is behind: do not even draw them
            self.outbox.dropped["frame"] += render_indices(output.start, n, self.render_fps)[1]
            self.notice("frames_dropped", "the connection is too slow for the avatar's picture: frames are dropped "
                                          "(the sound goes on)", once=True)
            return
        frames = session.render(output, size=FRAME_SIZE, fps=self.render_fps)
        self.counters.frames_rendered += len(frames)
        # frame j shows time j / fps; a chunk's frames end at the last one its motion covers
        last = int(np.floor((output.start + n - 1) / K.FPS * self.render_fps + 1e-9))
        for k, frame in enumerate(frames):
            index = last - len(frames) + 1 + k
            if self.outbox.put(P.down_message(P.KIND_FRAME, index, index / self.render_fps, encode_jpeg(frame)), "frame"):
                self.counters.frames_sent += 1

    def _notice_face(self, session: Any) -> None:
        """Tell the participant when the camera shows no face for a while (and when one is back).

        Reads the session's face tracker counters (frames tracked, frames without a face)."""
        face = getattr(session, "face", None)
        if face is None or not hasattr(face, "frames_without_face"):
            return
        tracked, without = int(face.frames_tracked), int(face.frames_without_face)
        new, new_without = tracked - self._face_counts[0], without - self._face_counts[1]
        self._face_counts = (tracked, without)
        if new <= 0:
            return
        self._face_seen.extend([False] * min(new_without, new) + [True] * max(0, new - new_without))
        recent = list(self._face_seen)
        if "no_face" not in self._notified and len(recent) == FACE_WINDOW and not any(recent):
            self._notified.discard("face_found")
            self.notice("no_face", "no face is visible in your camera: the avatar only hears you", once=True)
        elif "no_face" in self._notified and all(recent[-3:]):
            self._notified.discard("no_face")
            self.notice("face_found", "your face is visible again", once=True)

    def _stats(self, session: Any) -> P.Stats:
        c = self.counters
        link = {"mic_s": round(c.mic_samples / self.hello.sample_rate, 3), "camera_frames": c.camera_frames,
                "camera_dropped": c.camera_dropped, "camera_unreadable": c.camera_unreadable,
                "audio_sent_s": round(c.audio_sent_s, 3), "frames_rendered": c.frames_rendered,
                "frames_sent": c.frames_sent, "motion_rows_sent": c.motion_rows_sent,
                "frames_dropped": self.outbox.dropped["frame"], "stats_dropped": self.outbox.dropped["stats"],
                "outbox_bytes": self.outbox.bytes, "outbox_peak_bytes": self.outbox.peak_bytes,
                "steps": c.steps, "step_s_mean": round(c.step_seconds / max(c.steps, 1), 5),
                "step_s_max": round(c.step_max, 4),
                "behind_s": round(max(0.0, self.now() - self.stepped_to), 3)}
        stats = session.stats.as_dict() if session is not None else {}
        return P.Stats(t=round(self.now(), 4), session=_jsonable(stats), link=link)


def render_indices(start: int, n: int, render_fps: float) -> tuple[int, int]:
    """Render-rate frames whose times fall in motion frames [start, start + n) at K.FPS: (first, count)."""
    first = int(np.ceil(start / K.FPS * render_fps - 1e-9))
    end = int(np.ceil((start + n) / K.FPS * render_fps - 1e-9))
    return first, max(0, end - first)


def encode_jpeg(rgb: np.ndarray, quality: int = JPEG_QUALITY) -> bytes:
    import cv2

    ok, data = cv2.imencode(".jpg", np.ascontiguousarray(rgb[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("JPEG encoding of an avatar frame failed")
    return data.tobytes()


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return None if not np.isfinite(value) else round(float(value), 5)
    if isinstance(value, np.integer):
        return int(value)
    return value


# ---------------------------------------------------------------------------------------------
# the connection
# ---------------------------------------------------------------------------------------------
async def _close(ws: WebSocket, code: int, reason: str, t: float | None = None) -> None:
    """An ``error`` message then the close frame (reason ≤ 123 bytes, as RFC 6455 allows)."""
    with contextlib.suppress(Exception):  # the client may be gone already
        if code != P.CLOSE_NORMAL:
            await ws.send_text(P.Error(code=code, message=reason, t=t).model_dump_json())
        await ws.close(code=code, reason=reason.encode()[:123].decode(errors="ignore"))


def _parse(raw: str) -> P.Hello | P.Say | P.Interrupt | P.Stop:
    try:
        return P.CLIENT_MESSAGE.validate_json(raw)
    except ValidationError as err:
        first = err.errors()[0]
        if first.get("type") == "json_invalid":
            raise _Close(P.CLOSE_INVALID, "a text message is not valid JSON") from None
        where = ".".join(str(p) for p in first.get("loc", ()))
        raise _Close(P.CLOSE_INVALID, f"invalid message: {where}: {first.get('msg', 'invalid')}"[:200]) from None


async def _read_hello(ws: WebSocket) -> P.Hello:
    try:
        message = await asyncio.wait_for(ws.receive(), timeout=HELLO_TIMEOUT_S)
    except asyncio.TimeoutError:
        raise _Close(P.CLOSE_POLICY, f"send hello within {HELLO_TIMEOUT_S:g} s of connecting") from None
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000))
    raw = message.get("text")
    if raw is None:
        raise _Close(P.CLOSE_POLICY, "the first message must be hello (JSON text), not binary")
    if len(raw) > 4096:
        raise _Close(P.CLOSE_TOO_BIG, "hello is larger than 4 KiB")
    hello = _parse(raw)
    if not isinstance(hello, P.Hello):
        raise _Close(P.CLOSE_POLICY, f"the first message must be hello, not {hello.type}")
    if hello.version != P.VERSION:
        raise _Close(P.CLOSE_POLICY, f"protocol version {hello.version} is not supported (this server speaks {P.VERSION})")
    if not MIN_MIC_RATE <= hello.sample_rate <= MAX_MIC_RATE:
        raise _Close(P.CLOSE_POLICY, f"microphone sample rate {hello.sample_rate} Hz is not supported: "
                                     f"{MIN_MIC_RATE}–{MAX_MIC_RATE} Hz")
    return hello


async def _send_loop(ws: WebSocket, link: LiveLink) -> None:
    while True:
        item = await link.outbox.get()
        if isinstance(item, bytes):
            await ws.send_bytes(item)
        else:
            await ws.send_text(item)


async def _receive_loop(ws: WebSocket, link: LiveLink) -> None:
    while not link.stop.is_set():
        message = await ws.receive()
        if message["type"] == "websocket.disconnect":
            link.hub.counts["closed_by_client"] += 1
            raise WebSocketDisconnect(message.get("code", 1000))
        if message.get("bytes") is not None:
            link.receive_binary(message["bytes"])
        else:
            raw = message.get("text") or ""
            if len(raw) > MAX_MESSAGE_BYTES:
                raise _Close(P.CLOSE_TOO_BIG, f"text message of {len(raw)} characters; at most {MAX_MESSAGE_BYTES}")
            link.receive_control(_parse(raw))


async def _wait_queued(ws: WebSocket, link: LiveLink, ticket: Ticket, worker: Any) -> None:
    """Until the loop has started the session: tell the client its place in the queue."""
    last = None
    while not link.ready.is_set() and not link.stop.is_set():
        position = worker.position(ticket)
        if position and position != last:
            await ws.send_text(P.Queued(position=position).model_dump_json())
            last = position
        await asyncio.sleep(0.1)


async def live_connection(ws: WebSocket, hub: LiveHub) -> None:
    """Serve one ``/v1/live`` connection from handshake to close."""
    await ws.accept()  # Host and Origin were checked by the server-wide SecurityMiddleware (serve/security.py)
    try:
        hello = await _read_hello(ws)
    except _Close as err:
        await _close(ws, err.code, err.reason)
        return
    except WebSocketDisconnect:
        return
    link = LiveLink(hub, hello, Outbox(asyncio.get_running_loop(), max_bytes=hub.outbox_bytes,
                                          frame_limit=hub.frame_limit))
    if not await hub.claim(link):
        await _close(ws, P.CLOSE_BUSY, "a live session is already running on this server (it serves one at a time); "
                                       "try again later")
        return
    worker = hub.state.worker
    ticket: Ticket | None = None
    tasks: list[asyncio.Task[Any]] = []
    close: tuple[int, str] = (P.CLOSE_NORMAL, "stopped")
    try:
        try:
            ticket = worker.submit(link.run, label=f"live {link.id}", on_drop=link.stop.set)
        except QueueFull as err:
            raise _Close(P.CLOSE_BUSY, f"the server is busy: {err}; try again later") from None
        receiver = asyncio.create_task(_receive_loop(ws, link))
        sender = asyncio.create_task(_send_loop(ws, link))
        waiter = asyncio.create_task(_wait_queued(ws, link, ticket, worker))
        ended = asyncio.create_task(asyncio.to_thread(ticket.done.wait))
        tasks = [receiver, sender, waiter, ended]
        done, _ = await asyncio.wait({receiver, sender, ended}, return_when=asyncio.FIRST_COMPLETED)
        if receiver in done and receiver.exception() is None and link.flush:  # stop: let the loop flush
            await ended
            done = {ended}
        for task in done:
            err = task.exception()
            if isinstance(err, _Close):
                close = (err.code, err.reason)
            elif isinstance(err, (WebSocketDisconnect, OSError, RuntimeError)):
                close = (0, "")  # the client is gone: nothing to send
            elif err is not None:
                raise err
        if link.failure is not None:
            close = (link.failure.code, link.failure.reason)
        if close[0] and ticket.cancelled.is_set() and link.failure is None and not link.flush:
            close = (P.CLOSE_GOING_AWAY, "the server is shutting down")
        if close[0]:
            link.stop.set()
            await asyncio.to_thread(ticket.done.wait, 30.0)
            if close[0] == P.CLOSE_NORMAL:  # the loop's last messages (flushed output, bye) first
                await _drain(ws, link.outbox)
    except _Close as err:
        close = (err.code, err.reason)
    except Exception:  # noqa: BLE001
        log.exception("live connection %s failed", link.id)
        hub.counts["errors"] += 1
        close = (P.CLOSE_ERROR, "internal server error in the live connection (details are in the server log)")
    finally:
        link.stop.set()
        for task in tasks:
            task.cancel()
        if ticket is not None:
            worker.drop(ticket)
            await asyncio.to_thread(ticket.done.wait, 30.0)
        hub.release(link)
    if close[0]:
        await _close(ws, *close, t=round(link.now(), 4) if link.ready.is_set() else None)


async def _drain(ws: WebSocket, outbox: Outbox) -> None:
    while outbox.bytes or outbox._items:
        item = await outbox.get()
        await (ws.send_bytes(item) if isinstance(item, bytes) else ws.send_text(item))


# ---------------------------------------------------------------------------------------------
def install_live(app: FastAPI, state: Any, factory: SessionFactory | None = None) -> LiveHub:
    """Add ``WS /v1/live``, ``GET /v1/live/schema`` and ``GET /v1/live/status`` to the app."""
    hub = LiveHub(state, factory)
    router = APIRouter()

    @router.get(P.PATH + "/schema", summary="The live WebSocket protocol (version 1) as JSON Schema")
    def schema() -> dict[str, Any]:
        return P.json_schema()

    @router.get(P.PATH + "/status", summary="Whether a live session runs, and live counters")
    def status() -> dict[str, Any]:
        active = hub.active
        return {"active": active is not None, "session": None if active is None else active.id, **hub.counts}

    @router.websocket(P.PATH)
    async def live(ws: WebSocket) -> None:
        await live_connection(ws, hub)

    app.include_router(router)
    app.state.avflow_live = hub
    return hub


__all__ = ["LiveHub", "Outbox", "install_live", "render_indices"]
