"""Every endpoint of ``avflow serve`` against a real server (uvicorn on 127.0.0.1, a free port)."""

from __future__ import annotations

import io
import json
import logging
import socket
import threading
import time
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import pytest
import soundfile as sf
from websockets.sync.client import connect

from avflow_cli import constants as K
from avflow_cli.serve.jobs import RESULT_DIR
from avflow_cli.render.video import open_frame_source, to_video_rate
from avflow_cli.serve.engine import NEUTRAL_POSE
from avflow_cli.serve.protocol import decode_chunk
from serve_helpers import LiveServer, assert_error, raw_get, start_server, wait_idle, wait_job, with_settings

SENTENCES = "Hello there. It is good to see you. How are you today?"


# ---------------------------------------------------------------------------------------------
def test_health_reports_models_device_version_and_limits(client: httpx.Client, serve_settings: Any) -> None:
    health = client.get("/health").json()
    assert health["status"] == "ok"
    assert health["version"] == __import__("avflow_cli").__version__
    assert health["device"] == "cpu"
    assert Path(health["models"]["avflow"]).name == "avflow"
    assert health["models"]["vocoder"] == "griffinlim"
    assert health["avatar"] == "demo" and health["guidance"] is True
    assert health["limits"]["max_text_chars"] == serve_settings.max_text_chars
    assert health["queue"] == {"waiting": 0, "capacity": 2, "busy": False}
    assert health["stream"]["schedules"] == ["exact", "low-latency"]


def test_page_assets_and_openapi(client: httpx.Client) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    for element in ('id="text"', 'id="speak"', 'id="video"', 'id="avatar"', 'id="listen-audio"', "/static/app.js"):
        assert element in page.text
    for asset, kind in (("app.js", "javascript"), ("style.css", "css")):
        response = client.get(f"/static/{asset}")
        assert response.status_code == 200 and kind in response.headers["content-type"]
    spec = client.get("/openapi.json").json()
    assert {"/health", "/v1/synthesize", "/v1/jobs/{job_id}", "/v1/jobs/{job_id}/files/{name}", "/v1/listen"} <= set(spec["paths"])
    assert "SynthesizeRequest" in spec["components"]["schemas"]
    assert "multipart/form-data" in spec["paths"]["/v1/listen"]["post"]["requestBody"]["content"]
    assert "/v1/stream" in spec["info"]["description"]  # the WebSocket protocol is documented there


def test_synthesize_job_and_its_result_files(client: httpx.Client, live_server: LiveServer) -> None:
    response = client.post("/v1/synthesize", json={"text": SENTENCES, "seed": 7, "steps": 2})
    assert response.status_code == 202
    job = response.json()
    assert response.headers["location"] == job["url"] == f"/v1/jobs/{job['id']}"
    assert job["status"] in ("queued", "running") and job["request"]["text"] == SENTENCES
    job = wait_job(client, job["id"])
    assert job["status"] == "done", job
    assert job["expires_at"] == pytest.approx(job["finished"] + 600.0)
    assert set(job["files"]) == {"speech.wav", "motion.npz", "preview.mp4", "meta.json"}
    frames = job["result"]["frames"]

    wav, sr = sf.read(io.BytesIO(client.get(job["files"]["speech.wav"]).content), dtype="float32")
    assert sr == K.SAMPLE_RATE and len(wav) == frames * K.HOP_LENGTH
    assert job["result"]["seconds"] == pytest.approx(len(wav) / sr)
    with np.load(io.BytesIO(client.get(job["files"]["motion.npz"]).content)) as motion:
        assert motion["face"].shape == (frames, 9) and motion["mel"].shape == (frames, K.N_MELS)
    meta = client.get(job["files"]["meta.json"]).json()
    assert meta["text"] == SENTENCES and meta["seed"] == 7 and meta["preview"] == "avatar"
    video = client.get(job["files"]["preview.mp4"])
    assert video.headers["content-type"] == "video/mp4"
    path = live_server.state.settings.jobs_dir / "preview-check.mp4"
    path.write_bytes(video.content)
    from avflow_cli.vision.video import probe_video

    info = probe_video(path)
    path.unlink()
    assert info.has_audio and info.duration > 0 and info.width == 512

    # the same text and seed give the same speech; another seed does not
    again = wait_job(client, client.post("/v1/synthesize", json={"text": SENTENCES, "seed": 7, "steps": 2}).json()["id"])
    other = wait_job(client, client.post("/v1/synthesize", json={"text": SENTENCES, "seed": 8, "steps": 2}).json()["id"])
    same = client.get(again["files"]["speech.wav"]).content
    assert same == client.get(job["files"]["speech.wav"]).content
    assert client.get(other["files"]["speech.wav"]).content != same


def test_result_files_only_from_job_folders(client: httpx.Client, live_server: LiveServer, tmp_path: Path) -> None:
    job = wait_job(client, client.post("/v1/synthesize", json={"text": "Hi there.", "preview": False}).json()["id"])
    assert job["status"] == "done" and "preview.mp4" not in job["files"]
    jid, root = job["id"], live_server.state.settings.jobs_dir
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    (root / jid / RESULT_DIR / "meta.json").unlink()
    (root / jid / RESULT_DIR / "meta.json").symlink_to(secret)  # a link out of the job folder
    for path in [f"/v1/jobs/{jid}/files/..%2F..%2F.serve.lock", f"/v1/jobs/{jid}/files/%2e%2e%2fjob.json",
                 f"/v1/jobs/{jid}/files/job.json", f"/v1/jobs/{jid}/files/../job.json", f"/v1/jobs/{jid}/files/meta.json",
                 f"/v1/jobs/{jid}/files/preview.mp4", f"/v1/jobs/..%2F{jid}/files/speech.wav",
                 "/v1/jobs/%2e%2e/files/speech.wav", f"/v1/jobs/{'0' * 32}/files/speech.wav",
                 f"/v1/jobs/{jid}/files/%2Fetc%2Fpasswd", "/static/..%2Fapp.py", "/static/../app.py", "/static/%2e%2e/jobs.py"]:
        status, body = raw_get(live_server.url, path)
        assert status == 404, (path, status)
        assert b"TOP-SECRET" not in body and b"root:" not in body and b"import" not in body
    status, body = raw_get(live_server.url, f"/v1/jobs/{jid}/files/speech.wav")
    assert status == 200 and body[:4] == b"RIFF"


@pytest.mark.parametrize(
    "kwargs, status, message",
    [
        ({"content": b'{"text":', "headers": {"content-type": "application/json"}}, 422, "not valid JSON"),
        ({"json": {}}, 422, "text: Field required"),
        ({"json": {"text": "hi", "bogus": 1}}, 422, "bogus: Extra inputs are not permitted"),
        ({"json": {"text": "hi", "steps": 0}}, 422, "steps: Input should be greater than or equal to 1"),
        ({"json": {"text": "hi", "steps": 9}}, 400, "steps must be between 1 and 8"),
        ({"json": {"text": "hi", "speed": 0}}, 422, "speed"),
        ({"json": {"text": "hi", "seed": -1}}, 422, "seed"),
        ({"json": {"text": "   "}}, 400, "empty text"),
        ({"json": {"text": "a" * 401}}, 413, "at most 400"),
        ({"content": b"x" * 70_000, "headers": {"content-type": "application/json"}}, 413,
         "accepts at most 62.5 KiB here (--max-body-mb)"),
        ({"data": {"text": "hi"}}, 422, "invalid request"),
    ],
)
def test_malformed_requests_get_one_line_errors(client: httpx.Client, kwargs: dict, status: int, message: str) -> None:
    response = client.post("/v1/synthesize", **kwargs)
    assert_error(response, status, message)
    assert client.get("/health").json()["status"] == "ok"


def test_unknown_jobs_are_404(client: httpx.Client) -> None:
    for job_id in ("nothex", "0" * 32, "A" * 32):
        assert_error(client.get(f"/v1/jobs/{job_id}"), 404, "no job")
    assert_error(client.delete(f"/v1/jobs/{'0' * 32}"), 404, "no job")
    assert_error(client.get("/v1/nowhere"), 404, "Not Found")


def test_full_queue_answers_429_and_queued_jobs_can_be_deleted(client: httpx.Client, live_server: LiveServer) -> None:
    state = live_server.state
    gate = threading.Event()
    state.worker.submit(lambda ticket: gate.wait(60), label="test gate")  # the model is busy
    try:
        while not state.worker.busy:
            time.sleep(0.01)
        first = client.post("/v1/synthesize", json={"text": "One."})
        second = client.post("/v1/synthesize", json={"text": "Two."})
        assert first.status_code == second.status_code == 202
        assert (first.json()["position"], second.json()["position"]) == (1, 2)
        full = client.post("/v1/synthesize", json={"text": "Three."})
        assert_error(full, 429, "busy")
        assert full.headers["retry-after"] == "5"
        with connect(live_server.ws_url) as ws:
            ws.send(json.dumps({"text": "Four."}))
            msg = json.loads(ws.recv(timeout=30))
            assert msg["type"] == "error" and msg["status"] == 429 and "busy" in msg["message"]
        assert client.get("/health").json()["queue"]["waiting"] == 2
        second_id = second.json()["id"]
        assert client.delete(f"/v1/jobs/{second_id}").status_code == 204
        assert_error(client.get(f"/v1/jobs/{second_id}"), 404, "no job")
        assert not (state.settings.jobs_dir / second_id).exists()
    finally:
        gate.set()
    job = wait_job(client, first.json()["id"])
    assert job["status"] == "done"
    assert client.delete(f"/v1/jobs/{job['id']}").status_code == 204  # a finished job's files go too
    assert not (state.settings.jobs_dir / job["id"]).exists()
    wait_idle(state)


# ---------------------------------------------------------------------------------------------
def _stream(url: str, request: dict[str, Any]) -> tuple[list[tuple[float, dict[str, Any]]], list[Any]]:
    """Run one stream; returns (time, message) for each text message and the decoded chunks."""
    messages, chunks = [], []
    start = time.perf_counter()
    with connect(url, max_size=None) as ws:
        ws.send(json.dumps(request))
        header = None
        while True:
            data = ws.recv(timeout=120)
            if isinstance(data, bytes):
                chunks.append(decode_chunk(header, data))
                continue
            msg = json.loads(data)
            messages.append((time.perf_counter() - start, msg))
            header = msg
            if msg["type"] in ("end", "error"):
                return messages, chunks


@pytest.mark.parametrize("schedule", ["exact", "low-latency"])
def test_stream_chunks_add_up_to_the_offline_result(live_server: LiveServer, serve_service: Any, schedule: str) -> None:
    messages, chunks = _stream(live_server.ws_url, {"text": SENTENCES, "seed": 3, "frames": True, "schedule": schedule})
    kinds = [m["type"] for _, m in messages]
    assert kinds[0] == "accepted" and kinds[-1] == "end" and set(kinds[1:-1]) == {"chunk"} and len(chunks) >= 4
    accepted, end = messages[0][1], messages[-1][1]
    assert accepted["schedule"] == schedule and accepted["sample_rate"] == K.SAMPLE_RATE and accepted["fps"] == K.FPS
    assert accepted["avatar"] == "demo" and accepted["frames"] is True
    assert {g["name"]: g["dim"] for g in accepted["motion_layout"]} == {"face": 9, "head_pose": 7}
    first_audio_at = next(t for t, m in messages if m["type"] == "chunk" and m["n_audio"] > 0)
    assert first_audio_at < messages[-1][0]  # speech starts before the text is done
    samples = frames = images = 0
    for i, chunk in enumerate(chunks):  # every part continues where the last one stopped
        h = chunk.header
        assert h["seq"] == i and h["t_start"] == pytest.approx(samples / K.SAMPLE_RATE, abs=1e-6)
        assert h["frame_start"] == frames and h["image_start"] == images and h["image_fps"] == 30.0
        samples, frames, images = samples + h["n_audio"], frames + h["n_frames"], images + h["n_images"]
    assert end["chunks"] == len(chunks) and end["seconds"] == pytest.approx(samples / K.SAMPLE_RATE, abs=1e-5)
    wait_idle(live_server.state)

    wav = np.concatenate([c.audio for c in chunks])
    motion = np.concatenate([c.motion for c in chunks])
    np.testing.assert_array_equal(motion[:, 9:], np.tile(NEUTRAL_POSE, (len(motion), 1)))  # no head VAE: neutral
    direct = list(serve_service.synth.stream(SENTENCES, seed=3, schedule=schedule))  # what the server re-cuts
    np.testing.assert_array_equal(wav, np.concatenate([p.wav for p in direct]))
    np.testing.assert_array_equal(motion[:, :9], np.concatenate([p.face for p in direct]))
    offline = serve_service.synth.synthesize(SENTENCES, seed=3)
    assert len(wav) == len(offline.wav) and len(motion) == len(offline.face)
    if schedule == "exact":  # the exact schedule's motion is the offline motion
        np.testing.assert_allclose(motion[:, :9], offline.face, atol=1e-4)
    # the images are preview.mp4's frames: the same resampling and renderer (JPEG-compressed)
    face_v, _ = to_video_rate(motion[:, :9], None, K.FPS, 30.0)
    assert images == len(face_v)
    all_images = [image for c in chunks for image in c.images]
    source = open_frame_source(serve_service.synth.face_decoder_path, size=384)
    for k in (0, len(face_v) // 2, len(face_v) - 1):
        image = cv2.imdecode(np.frombuffer(all_images[k], np.uint8), cv2.IMREAD_COLOR)[..., ::-1]
        drawn = list(source.frames(face_v[k:k + 1], None))[0]
        assert image.shape == drawn.shape == (384, 384, 3)
        assert np.abs(image.astype(int) - drawn.astype(int)).mean() < 2.0
    _, plain = _stream(live_server.ws_url, {"text": "No pictures."})
    assert all(c.images == [] and c.header["n_images"] == 0 for c in plain)


def test_concurrent_streams_take_turns(live_server: LiveServer) -> None:
    """Two streams share the model chunk by chunk: the second client hears its first sentence
    before the first client's long text is done (not after it)."""
    long_text = " ".join(f"Here is sentence number {n}, and it goes on." for n in range(1, 9))
    assert len(long_text) <= 400
    results: dict[str, list[tuple[float, dict[str, Any]]]] = {}
    origin = time.perf_counter()

    def run(name: str, text: str, delay: float) -> None:
        time.sleep(delay)
        messages, _ = _stream(live_server.ws_url, {"text": text})
        offset = time.perf_counter() - origin - messages[-1][0]
        results[name] = [(t + offset, m) for t, m in messages]

    threads = [threading.Thread(target=run, args=("long", long_text, 0.0)),
               threading.Thread(target=run, args=("short", "Hi. How are you?", 0.2))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    long_end = results["long"][-1][0]
    short_first = next(t for t, m in results["short"] if m["type"] == "chunk" and m["n_audio"])
    assert results["long"][-1][1]["type"] == results["short"][-1][1]["type"] == "end"
    assert short_first < long_end


@pytest.mark.parametrize(
    "message, status, text",
    [
        (b"\x00\x01binary", 400, "JSON text message"),
        ("{not json", 400, "not valid JSON"),
        (json.dumps({"text": ""}), 400, "empty text"),
        (json.dumps({"text": "b" * 401}), 413, "at most 400"),
        (json.dumps({"text": "hi", "steps": 99}), 400, "steps must be between"),
        (json.dumps({"txt": "hi"}), 400, "text: Field required"),
        (json.dumps({"text": "hi", "schedule": "fastest"}), 400, "schedule: Input should be 'exact' or 'low-latency'"),
    ],
)
def test_stream_rejects_malformed_requests(live_server: LiveServer, message: Any, status: int, text: str) -> None:
    with connect(live_server.ws_url) as ws:
        ws.send(message)
        msg = json.loads(ws.recv(timeout=30))
        assert msg["type"] == "error" and msg["status"] == status and text in msg["message"], msg
        assert "Traceback" not in msg["message"]
    messages, chunks = _stream(live_server.ws_url, {"text": "Still here."})
    assert messages[-1][1]["type"] == "end" and sum(len(c.audio) for c in chunks) > 0


def test_client_leaving_mid_stream_stops_generation(live_server: LiveServer, client: httpx.Client, serve_service: Any,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    state = live_server.state
    wait_idle(state)
    text = " ".join(f"This is sentence number {n}, and it goes on." for n in range(1, 9))
    assert len(text) <= 400
    before = dict(state.stats)
    with caplog.at_level(logging.INFO):
        with connect(live_server.ws_url, max_size=None) as ws:
            ws.send(json.dumps({"text": text}))
            assert json.loads(ws.recv(timeout=30))["type"] == "accepted"
            assert json.loads(ws.recv(timeout=60))["type"] == "chunk"
            ws.socket.shutdown(socket.SHUT_RDWR)  # vanish without a closing handshake
        wait_idle(state)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text  # no traceback anywhere
    assert "stream client left" in caplog.text
    generated = state.stats["chunks_generated"] - before["chunks_generated"]
    assert state.stats["streams_cancelled"] == before["streams_cancelled"] + 1
    whole = len(serve_service.synth.text_to_tokens(text)) / 16  # frames / chunk frames: the whole stream
    assert 1 <= generated < whole / 2  # generation stopped soon after the client left
    job = wait_job(client, client.post("/v1/synthesize", json={"text": "Are you still there?"}).json()["id"])
    assert job["status"] == "done"


# ---------------------------------------------------------------------------------------------
def test_finished_jobs_expire_and_their_files_go(serve_service: Any, serve_settings: Any, tmp_path: Path) -> None:
    server = start_server(serve_service, with_settings(serve_settings, jobs_dir=tmp_path / "jobs", job_ttl_s=1.0,
                                                       janitor_interval_s=0.2))
    try:
        with httpx.Client(base_url=server.url, timeout=60) as c:
            job = wait_job(c, c.post("/v1/synthesize", json={"text": "Soon gone.", "preview": False}).json()["id"])
            assert job["status"] == "done" and (tmp_path / "jobs" / job["id"] / RESULT_DIR / "speech.wav").is_file()
            deadline = time.monotonic() + 20
            while c.get(f"/v1/jobs/{job['id']}").status_code != 404:
                assert time.monotonic() < deadline, "job never expired"
                time.sleep(0.1)
            assert not (tmp_path / "jobs" / job["id"]).exists()
            assert_error(c.get(job["files"]["speech.wav"]), 404, "no file")
    finally:
        server.stop()
