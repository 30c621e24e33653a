"""The FastAPI application of ``avflow serve``: the page, the JSON API and the WebSocket stream.

Every generation goes through one :class:`~avflow_cli.serve.worker.GenerationWorker` (one at a
time per device, bounded queue → 429). Every error reaches the client as JSON
``{"error": "one line"}`` (or a WebSocket error message); tracebacks stay in the server log.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import shutil
import threading
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Literal, Optional

from fastapi import FastAPI, Request, WebSocket, WebSocketDisconnect
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from avflow_cli import __version__
from avflow_cli.checks import MAX_SEED
from avflow_cli.errors import AvflowError
from avflow_cli.fsutil import atomic_path
from avflow_cli.serve import protocol
from avflow_cli.serve.engine import SCHEDULES, ListenInput, ModelService
from avflow_cli.serve.jobs import INPUT_DIR, INTERRUPTED, RESULT_DIR, RESULT_FILES, Job, JobStore
from avflow_cli.serve.live import install_live
from avflow_cli.serve.paths import PathRedactor, public_name
from avflow_cli.serve.security import HostPolicy, SecurityMiddleware, require_unicode, security_headers
from avflow_cli.serve.settings import ServeSettings
from avflow_cli.serve.uploads import BodyLimit, check_audio_upload, check_video_upload, too_large_message, video_suffix
from avflow_cli.serve.worker import GenerationWorker, QueueFull, Ticket

log = logging.getLogger("avflow.serve")
STATIC_DIR = Path(__file__).parent / "static"
REQUEST_TIMEOUT_S = 30.0  # a WebSocket client must send its request within this
INTERNAL_ERROR = "internal server error while generating (details are in the server log)"
LISTEN_PATH = "/v1/listen"

API_DESCRIPTION = """Text → speech + face motion + head motion of a talking avatar (AV-Flow), one model in memory.

* `POST /v1/synthesize` queues a job; poll `GET /v1/jobs/{id}` until `status` is `done`, then fetch
  the URLs in `files` (`speech.wav`, `motion.npz`, `preview.mp4`, `meta.json`).
* `POST /v1/listen` (multipart: `audio`, optional `video`, `channel`, `text`, `seed`, `steps`, `speed`)
  queues a listening-mode job: the avatar says `text` (or only listens when it is empty) while it
  listens to the user's recording; `GET /health` says whether the model was trained to listen.
* One generation runs at a time; when the queue is full every generating endpoint answers `429`.
* Finished jobs and their files are removed after `limits.job_ttl_s` (see `GET /health`).
* Errors are JSON `{"error": "…"}`.
* Requests must name this server in `Host` (see `--allow-host`); browsers' cross-origin POST, DELETE and
  WebSocket requests are refused (docs/serve.md, "Security").

**WebSocket `/v1/stream`** (not expressible in OpenAPI):
""" + "\n".join(line[0:] for line in (protocol.__doc__ or "").splitlines()[2:])


# ---------------------------------------------------------------------------------------------
# Request and response models (they are also the OpenAPI schema)
# ---------------------------------------------------------------------------------------------
class SynthesizeRequest(BaseModel):
    """What to say and how."""

    model_config = ConfigDict(extra="forbid")
    text: str = Field(..., description="Text to speak (one or more sentences).", examples=["Hello there. How are you?"])
    seed: int = Field(0, ge=0, le=MAX_SEED, description="Random seed: the same seed gives the same output.")
    steps: Optional[int] = Field(None, ge=1, description="Euler steps (default: the model's own count).")
    speed: float = Field(1.0, ge=0.1, le=10.0, description="Speaking rate (2.0 = twice as fast).")
    preview: bool = Field(True, description="Render preview.mp4 (video with sound).")


class StreamRequest(BaseModel):
    """The first message of a /v1/stream connection."""

    model_config = ConfigDict(extra="forbid")
    text: str
    seed: int = Field(0, ge=0, le=MAX_SEED)
    steps: Optional[int] = Field(None, ge=1)
    speed: float = Field(1.0, ge=0.1, le=10.0)
    frames: bool = Field(False, description="Also send the avatar's frames (JPEG, the preview's renderer).")
    schedule: Literal["exact", "low-latency"] = Field(SCHEDULES[0], description="Synthesizer.stream's schedule.")


class JobView(BaseModel):
    """A job's state; `files` maps result names to URLs once `status` is `done`."""

    id: str
    kind: str
    status: str = Field(..., description="queued | running | done | failed")
    url: str
    created: float
    started: Optional[float] = None
    finished: Optional[float] = None
    expires_at: Optional[float] = None
    position: Optional[int] = Field(None, description="0 = running, k = k-th in the queue")
    request: dict[str, Any]
    error: Optional[str] = None
    result: Optional[dict[str, Any]] = None
    files: dict[str, str] = {}


class ErrorBody(BaseModel):
    error: str


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": ErrorBody} for code in codes}


# ---------------------------------------------------------------------------------------------
class ServerState:
    """Everything the routes share: the model, the limits, the jobs and the worker."""

    def __init__(self, service: ModelService, settings: ServeSettings) -> None:
        self.service = service
        self.settings = settings
        self.server_id = uuid.uuid4().hex
        self.store = JobStore(settings.jobs_dir, ttl_s=settings.job_ttl_s, server_id=self.server_id)
        self.worker = GenerationWorker(settings.queue_size)
        self.tickets: dict[str, Ticket] = {}
        self.started = time.time()
        self.stats = {"streams": 0, "streams_cancelled": 0, "chunks_generated": 0, "chunks_sent": 0}
        self.redact = PathRedactor.for_server(getattr(service.synth, "reads", []), settings.jobs_dir)

    # ------------------------------------------------------------------------------------------
    def check_options(self, text: str, seed: int, steps: int | None, speed: float) -> dict[str, Any]:
        """The request's options after the server's own limits; HTTPException otherwise."""
        require_unicode(text, "text")
        text = text.strip()
        if not text:
            raise HTTPException(400, "empty text: nothing to synthesize")
        limit = self.settings.max_text_chars
        if len(text) > limit:
            raise HTTPException(413, f"text has {len(text)} characters; this server accepts at most {limit} (--max-text)")
        if not self.service.sentences(text):
            raise HTTPException(400, "empty text: nothing to synthesize")
        if steps is not None and not 1 <= steps <= self.settings.max_steps:
            raise HTTPException(400, f"steps must be between 1 and {self.settings.max_steps}, got {steps}")
        if not 0 <= seed <= MAX_SEED:
            raise HTTPException(400, f"seed must be between 0 and {MAX_SEED}")
        if not 0.1 <= speed <= 10.0:
            raise HTTPException(400, f"speed must be between 0.1 and 10, got {speed}")
        return {"text": text, "seed": int(seed), "steps": steps, "speed": float(speed)}

    def view(self, job: Job) -> dict[str, Any]:
        ticket = self.tickets.get(job.id)
        files: dict[str, str] = {}
        if job.status == "done":
            result = self.store.folder(job.id, RESULT_DIR)
            files = {name: f"/v1/jobs/{job.id}/files/{name}" for name in RESULT_FILES if (result / name).is_file()}
        return {
            "id": job.id, "kind": job.kind, "status": job.status, "url": f"/v1/jobs/{job.id}",
            "created": job.created, "started": job.started, "finished": job.finished,
            "expires_at": self.store.expires_at(job),
            "position": self.worker.position(ticket) if ticket is not None and job.status in ("queued", "running") else None,
            "request": job.request, "error": job.error, "result": job.result, "files": files,
        }

    def submit_job(self, job: Job, listen: ListenInput | None = None) -> Ticket:
        """Queue a created job; on a full queue the job is deleted and 429 raised."""
        store, service = self.store, self.service
        preview = self.settings.preview and bool(job.request.get("preview", True))
        redact = self.redact
        if listen is not None:  # the stored uploads are named as the client named them
            redact = redact.extended([(listen.audio, str(job.request.get("audio", "audio"))),
                                      *([(listen.video, str(job.request.get("video", "video")))] if listen.video else [])])

        def run(ticket: Ticket) -> None:
            try:
                if ticket.cancelled.is_set() or store.update(job.id, status="running", started=time.time()) is None:
                    return
                try:
                    result_dir = store.folder(job.id, RESULT_DIR)
                    service.run_job(job.request, result_dir, preview=preview, listen=listen)
                    meta = _publish_meta(result_dir, redact)
                    summary = {k: meta.get(k) for k in ("seconds", "frames", "fps", "sample_rate", "steps",
                                                        "preview", "real_time_factor", "timings_s", "participant")
                               if k in meta}
                    store.update(job.id, status="done", finished=time.time(), result=summary)
                except AvflowError as err:
                    store.update(job.id, status="failed", finished=time.time(), error=redact.text(str(err)))
                except Exception:  # noqa: BLE001 (a bug: logged with its traceback, the client gets one line)
                    log.exception("job %s failed", job.id)
                    store.update(job.id, status="failed", finished=time.time(), error=INTERNAL_ERROR)
            finally:
                self.tickets.pop(job.id, None)
                if listen is not None:
                    shutil.rmtree(store.folder(job.id, INPUT_DIR), ignore_errors=True)

        def dropped() -> None:
            self.tickets.pop(job.id, None)
            store.update(job.id, status="failed", finished=time.time(), error=INTERRUPTED)

        try:
            ticket = self.worker.submit(run, label=f"job {job.id}", on_drop=dropped)
        except QueueFull as err:
            store.delete(job.id)
            raise HTTPException(429, f"the server is busy: {err}; try again shortly",
                                headers={"Retry-After": "5"}) from None
        self.tickets[job.id] = ticket
        return ticket

    def shutdown(self) -> None:
        """Stop the worker; jobs that cannot finish now are recorded as interrupted."""
        self.worker.stop(timeout=30.0)
        for job_id in self.store.unfinished():
            self.store.update(job_id, status="failed", finished=time.time(), error=INTERRUPTED)
        self.store.close()


def _publish_meta(result_dir: Path, redact: PathRedactor) -> dict[str, Any]:
    """meta.json as clients may read it (server paths replaced by public names), rewritten atomically."""
    meta = redact.json(json.loads((result_dir / "meta.json").read_text()))
    with atomic_path(result_dir / "meta.json") as tmp:
        tmp.write_text(json.dumps(meta, indent=2))
    return meta


# ---------------------------------------------------------------------------------------------
def create_app(service: ModelService, settings: ServeSettings) -> FastAPI:
    """The application for one loaded model; the jobs folder is locked and recovered here."""
    state = ServerState(service, settings)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async def janitor() -> None:
            while True:
                await asyncio.sleep(settings.janitor_interval_s)
                try:
                    await run_in_threadpool(state.store.expire)
                except Exception:  # noqa: BLE001
                    log.exception("removing expired jobs failed")

        task = asyncio.create_task(janitor())
        try:
            yield
        finally:
            task.cancel()
            await run_in_threadpool(state.shutdown)

    app = FastAPI(title="avflow serve", version=__version__, description=API_DESCRIPTION, lifespan=lifespan,
                  docs_url=None, redoc_url=None)  # the interactive docs load scripts from a CDN: not offline
    app.state.avflow = state
    app.add_middleware(BodyLimit, limit_for=lambda path: (settings.max_upload_bytes, "--max-upload-mb")
                       if path == LISTEN_PATH else (settings.max_body_bytes, "--max-body-mb"))
    # outermost: Host/Origin checks before anything reads the request; headers on every answer
    app.add_middleware(SecurityMiddleware, policy=HostPolicy(settings.host, settings.allowed_hosts))
    _add_error_handlers(app, state.redact)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index() -> HTMLResponse:
        return HTMLResponse((STATIC_DIR / "index.html").read_text(encoding="utf-8"), headers={"Cache-Control": "no-store"})

    @app.get("/health", summary="Models, device, version, queue and limits")
    def health() -> dict[str, Any]:
        info = service.info()
        if not info["guidance"]:
            info["guidance_note"] = NO_GUIDANCE
        return state.redact.json({  # no server path leaves (docs/serve.md, "Security")
            "status": "ok", **info,
            "queue": {"waiting": state.worker.waiting, "capacity": settings.queue_size, "busy": state.worker.busy},
            "jobs": state.store.counts(), "limits": settings.limits(), "uptime_s": round(time.time() - state.started, 3),
            "recovered_jobs": state.store.recovered, "stream_stats": dict(state.stats)})

    @app.post("/v1/synthesize", status_code=202, response_model=JobView, summary="Queue a text-to-avatar job",
              responses=_errors(400, 413, 422, 429))
    def synthesize(body: SynthesizeRequest) -> JSONResponse:
        options = state.check_options(body.text, body.seed, body.steps, body.speed)
        job = state.store.create("synthesize", {**options, "preview": body.preview})
        state.submit_job(job)
        view = state.view(state.store.get(job.id) or job)
        return JSONResponse(view, status_code=202, headers={"Location": view["url"]})

    @app.get("/v1/jobs/{job_id}", response_model=JobView, summary="A job's state and result URLs",
             responses=_errors(404))
    def get_job(job_id: str) -> dict[str, Any]:
        job = state.store.get(job_id)
        if job is None:
            raise HTTPException(404, f"no job {job_id[:64]!r} (finished jobs are removed after {settings.job_ttl_s:g} s)")
        return state.view(job)

    @app.delete("/v1/jobs/{job_id}", status_code=204, summary="Cancel a queued job or remove a finished one",
                responses=_errors(404, 409))
    def delete_job(job_id: str) -> None:
        job = state.store.get(job_id)
        if job is None:
            raise HTTPException(404, f"no job {job_id[:64]!r}")
        ticket = state.tickets.get(job_id)
        if job.status == "running" or (ticket is not None and ticket.started.is_set() and not ticket.done.is_set()):
            raise HTTPException(409, "the job is running; delete it once it has finished")
        if ticket is not None:
            ticket.on_drop = None
            state.worker.drop(ticket)
            state.tickets.pop(job_id, None)
        state.store.delete(job_id)

    @app.get("/v1/jobs/{job_id}/files/{name}", summary="A result file of a finished job",
             responses={200: {"content": {t: {} for t in set(RESULT_FILES.values())}}, **_errors(404)})
    def job_file(job_id: str, name: str) -> FileResponse:
        path = state.store.result_file(job_id, name)
        if path is None:
            raise HTTPException(404, f"no file {name[:64]!r} for job {job_id[:64]!r} (results: {', '.join(RESULT_FILES)}, "
                                     "served once the job is done)")
        return FileResponse(path, media_type=RESULT_FILES[name], filename=name)

    @app.post(LISTEN_PATH, status_code=202, response_model=JobView, summary="Queue a listening-mode job (uploads)",
              responses=_errors(400, 413, 429), openapi_extra=LISTEN_OPENAPI)
    async def listen(request: Request) -> JSONResponse:
        return await _listen(request, state)

    @app.websocket("/v1/stream")
    async def stream(ws: WebSocket) -> None:
        await _stream(ws, state)

    install_live(app, state)  # WS /v1/live: the live avatar (avflow_cli/serve/live.py)
    return app


# ---------------------------------------------------------------------------------------------
def _add_error_handlers(app: FastAPI, redact: PathRedactor) -> None:
    @app.exception_handler(HTTPException)
    async def http_error(_: Request, err: HTTPException) -> JSONResponse:
        return JSONResponse({"error": redact.text(str(err.detail))}, status_code=err.status_code, headers=err.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, err: RequestValidationError) -> JSONResponse:
        return JSONResponse({"error": _validation_message(err.errors())}, status_code=422)

    @app.exception_handler(AvflowError)
    async def user_error(_: Request, err: AvflowError) -> JSONResponse:
        return JSONResponse({"error": redact.text(str(err))}, status_code=400)

    @app.exception_handler(Exception)
    async def bug(request: Request, err: Exception) -> JSONResponse:
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=err)
        # answered by Starlette's outermost error middleware, past SecurityMiddleware: headers here
        return JSONResponse({"error": "internal server error (details are in the server log)"}, status_code=500,
                            headers=security_headers(request.headers.get("host")))


def _validation_message(errors: Any) -> str:
    """Pydantic's error list as one line: ``text: Field required; speed: …``."""
    parts = []
    for item in errors:
        if item.get("type") == "json_invalid":
            parts.append(f"the body is not valid JSON ({item.get('ctx', {}).get('error', 'decode error')})")
            continue
        loc = ".".join(str(p) for p in item.get("loc", ()) if p != "body") or "body"
        parts.append(f"{loc}: {item.get('msg', 'invalid')}")
    return "invalid request: " + "; ".join(parts)


# ---------------------------------------------------------------------------------------------
# Listening mode
# ---------------------------------------------------------------------------------------------
NO_GUIDANCE = ("this model was trained without participant guidance: in listening mode it says its text but "
               "does not react to you (train with `--config dyadic` for a listening avatar)")
LISTEN_OPENAPI: dict[str, Any] = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["audio"], "properties": {
        "audio": {"type": "string", "format": "binary", "description": "The user's speech: wav, flac, ogg, mp3, aac, aiff, "
                  "webm/matroska, mp4/mov (judged by its bytes; playlists and lists of other files are refused)."},
        "video": {"type": "string", "format": "binary", "description": "Optional video of the user's face."},
        "channel": {"type": "string", "description": "Which channel of a multi-channel recording is the user (or 'mix')."},
        "text": {"type": "string", "description": "What the avatar says (may be empty: it only listens)."},
        "seed": {"type": "integer", "default": 0}, "steps": {"type": "integer"},
        "speed": {"type": "number", "default": 1.0}}}}}}}


def _form_number(form: Any, name: str, kind: type, default: Any) -> Any:
    raw = form.get(name)
    if raw is None or (isinstance(raw, str) and raw.strip() == ""):
        return default
    if not isinstance(raw, str):
        raise HTTPException(400, f"form field {name!r} must be a value, not a file")
    try:
        return kind(raw)
    except ValueError:
        raise HTTPException(400, f"form field {name!r}: {raw[:40]!r} is not a valid {kind.__name__}") from None


def _file_field(form: Any, name: str) -> UploadFile | None:
    item = form.get(name)
    if item is None or (isinstance(item, str) and not item):
        return None
    if not isinstance(item, UploadFile):
        raise HTTPException(400, f"form field {name!r} must be a file upload")
    return item if (item.filename or item.size) else None  # a browser's "no file chosen" part


async def _save_upload(upload: UploadFile, path: Path) -> None:
    with open(path, "wb") as out:
        while chunk := await upload.read(1 << 20):
            out.write(chunk)


async def _listen(request: Request, state: ServerState) -> JSONResponse:
    settings = state.settings
    try:
        form = await request.form(max_files=2, max_fields=8)
    except HTTPException:
        raise
    except Exception as err:  # noqa: BLE001 (python-multipart's parse errors)
        raise HTTPException(400, f"malformed multipart form ({type(err).__name__}: {str(err)[:120]})") from None
    tmp = None
    try:
        audio, video = _file_field(form, "audio"), _file_field(form, "video")
        if audio is None:
            raise HTTPException(400, "give the user's speech as the form file field 'audio'")
        text, channel = form.get("text") or "", form.get("channel") or None
        if not isinstance(text, str) or not (channel is None or isinstance(channel, str)):
            raise HTTPException(400, "form fields 'text' and 'channel' must be values, not files")
        require_unicode(text, "text")
        if channel is not None:
            require_unicode(channel, "form field 'channel'")
        audio_name = public_name(audio.filename, "audio")
        seed = _form_number(form, "seed", int, 0)
        steps = _form_number(form, "steps", int, None)
        speed = _form_number(form, "speed", float, 1.0)
        text = text.strip()
        if len(text) > settings.max_text_chars:
            raise HTTPException(413, f"text has {len(text)} characters; this server accepts at most {settings.max_text_chars}")
        if text:
            options = state.check_options(text, seed, steps, speed)
        else:
            if not state.service.guided:
                raise HTTPException(400, "this model was trained without participant guidance, so it cannot only "
                                         "listen: give it text to say (form field 'text')")
            state.check_options("x", seed, steps, speed)
            options = {"text": "", "seed": seed, "steps": steps, "speed": speed}
        tmp = state.store.upload_dir()
        await _save_upload(audio, tmp / "upload_audio")
        await run_in_threadpool(check_audio_upload, tmp / "upload_audio", tmp / "participant.wav", field="audio",
                                filename=audio_name, max_seconds=settings.max_upload_seconds,
                                channel=channel)
        names = {"audio": audio_name, "channel": channel}
        video_name = None
        if video is not None:
            video_upload_name = public_name(video.filename, "video")
            video_name = "participant" + video_suffix(video_upload_name)
            await _save_upload(video, tmp / video_name)
            await run_in_threadpool(check_video_upload, tmp / video_name, field="video",
                                    filename=video_upload_name, max_seconds=settings.max_upload_seconds)
            names["video"] = video_upload_name
        job = state.store.create("listen", {**options, **names})
        inputs = state.store.folder(job.id, INPUT_DIR)
        inputs.mkdir()
        shutil.move(tmp / "participant.wav", inputs / "participant.wav")
        listen = ListenInput(audio=inputs / "participant.wav", channel=channel)
        if video_name is not None:
            shutil.move(tmp / video_name, inputs / video_name)
            listen.video = inputs / video_name
        state.submit_job(job, listen)
        view = state.view(state.store.get(job.id) or job)
        return JSONResponse(view, status_code=202, headers={"Location": view["url"]})
    finally:
        await form.close()
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# Streaming
# ---------------------------------------------------------------------------------------------
class _ClientGone(Exception):
    """The client left, or asked to stop (``cancelled``: it is still there to get a close frame)."""

    def __init__(self, cancelled: bool = False) -> None:
        super().__init__()
        self.cancelled = cancelled


CANCELLED_REASON = "cancelled by the client"


async def _send_error(ws: WebSocket, status: int, message: str) -> None:
    with contextlib.suppress(Exception):  # the client may be gone already
        await ws.send_text(json.dumps({"type": "error", "status": status, "message": message}))
        await ws.close(code=protocol.CLOSE_CODES.get(status, 1011))


async def _read_request(ws: WebSocket, state: ServerState) -> dict[str, Any] | None:
    """The client's JSON request, checked; None after an error was sent (or the client left)."""
    try:
        message = await asyncio.wait_for(ws.receive(), timeout=REQUEST_TIMEOUT_S)
    except asyncio.TimeoutError:
        await _send_error(ws, 400, f"send the request (JSON) within {REQUEST_TIMEOUT_S:g} s of connecting")
        return None
    if message["type"] == "websocket.disconnect":
        return None
    raw = message.get("text")
    if raw is None:
        await _send_error(ws, 400, "the request must be a JSON text message, not binary")
        return None
    if len(raw) > state.settings.max_body_bytes:
        await _send_error(ws, 413, too_large_message(state.settings.max_body_bytes, "--max-body-mb"))
        return None
    try:
        body = StreamRequest.model_validate_json(raw)
        return {**state.check_options(body.text, body.seed, body.steps, body.speed), "frames": body.frames,
                "schedule": body.schedule}
    except ValidationError as err:
        await _send_error(ws, 400, _validation_message(err.errors()))
    except HTTPException as err:
        await _send_error(ws, err.status_code, str(err.detail))
    return None


async def _watch(ws: WebSocket) -> bool:
    """Returns when the client disconnects (False) or asks to stop with ``{"type": "cancel"}`` (True)."""
    while True:
        message = await ws.receive()
        if message["type"] == "websocket.disconnect":
            return False
        with contextlib.suppress(ValueError, TypeError, AttributeError):
            if json.loads(message.get("text") or "{}").get("type") == "cancel":
                return True


async def _stream(ws: WebSocket, state: ServerState) -> None:
    service = state.service
    await ws.accept()
    options = await _read_request(ws, state)
    if options is None:
        return
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

    def put(kind: str, item: Any = None) -> None:
        loop.call_soon_threadsafe(queue.put_nowait, (kind, item))

    # One worker task per chunk, each re-queued at the back when done: concurrent streams (and jobs)
    # take turns on the model, so every client gets its first sentence soon, not after whole texts.
    cancelled = threading.Event()
    chunks_of = service.stream(options["text"], seed=options["seed"], steps=options["steps"], speed=options["speed"],
                               cancelled=cancelled, frames=options["frames"], schedule=options["schedule"])
    pending: dict[str, Ticket] = {}

    def shutting_down() -> None:
        put("error", (503, "the server is shutting down"))

    def step(ticket: Ticket) -> None:
        if cancelled.is_set():
            return
        try:
            chunk = next(chunks_of, None)
        except AvflowError as err:
            put("error", (400, state.redact.text(str(err))))
            return
        except Exception:  # noqa: BLE001
            log.exception("stream failed")
            put("error", (500, INTERNAL_ERROR))
            return
        if chunk is None:
            put("end")
            return
        state.stats["chunks_generated"] += 1
        put("chunk", chunk)
        try:  # a continuation: it keeps its place even when new requests fill the queue
            pending["ticket"] = state.worker.submit(step, label="stream", on_drop=shutting_down, continuation=True)
        except QueueFull:
            shutting_down()

    try:
        pending["ticket"] = state.worker.submit(step, label="stream", on_drop=shutting_down)
    except QueueFull as err:
        await _send_error(ws, 429, f"the server is busy: {err}; try again shortly")
        return
    ticket = pending["ticket"]
    started = time.perf_counter()
    state.stats["streams"] += 1
    watcher = asyncio.create_task(_watch(ws))
    chunks, seconds, first_audio = 0, 0.0, None
    try:
        await ws.send_text(json.dumps({
            "type": "accepted", "position": state.worker.position(ticket), "schedule": options["schedule"],
            "chunks": None, "sample_rate": service.sample_rate, "fps": service.fps,
            "motion_layout": service.motion_layout(), "avatar": service.avatar,
            "frames": bool(options["frames"] and service.can_render)}))
        while True:
            getter = asyncio.ensure_future(queue.get())
            done, _ = await asyncio.wait({getter, watcher}, return_when=asyncio.FIRST_COMPLETED)
            if getter not in done:
                getter.cancel()
                raise _ClientGone(cancelled=bool(watcher.result()))
            kind, item = getter.result()
            if kind == "chunk":
                await ws.send_text(json.dumps(protocol.chunk_header(item, sample_rate=service.sample_rate, fps=service.fps)))
                await ws.send_bytes(protocol.chunk_payload(item))
                chunks += 1
                seconds += len(item.audio) / service.sample_rate
                if first_audio is None and len(item.audio):
                    first_audio = time.perf_counter() - started
                state.stats["chunks_sent"] += 1
            elif kind == "end":
                await ws.send_text(json.dumps({"type": "end", "chunks": chunks, "seconds": round(seconds, 6),
                                               "first_audio_s": None if first_audio is None else round(first_audio, 6),
                                               "elapsed_s": round(time.perf_counter() - started, 6)}))
                await ws.close(code=1000)
                return
            else:
                await _send_error(ws, *item)
                return
    except (_ClientGone, WebSocketDisconnect, OSError, RuntimeError) as err:
        state.stats["streams_cancelled"] += 1
        if isinstance(err, _ClientGone) and err.cancelled:  # still connected: a proper close, not a dropped line
            with contextlib.suppress(Exception):
                await ws.close(code=1000, reason=CANCELLED_REASON)
        log.info("stream client left after %d chunk(s); generation stopped", chunks)
    finally:
        cancelled.set()
        state.worker.drop(pending["ticket"])
        watcher.cancel()
