"""The server's security faults (docs/serve.md, "Security"): uploads that would make ffmpeg read
server files, server paths in answers, headers, Host/Origin checks, and sloppy ends."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import numpy as np
import pytest
import soundfile as sf
from serve_helpers import LiveServer, assert_error, wait_job


@pytest.fixture(scope="module")
def server_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A file only the server may read (a video with speech-like sound) and uploads that name it."""
    root = tmp_path_factory.mktemp("server_side")
    secret = root / "secret.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=s=64x64:r=25:d=1.5", "-f", "lavfi",
                    "-i", "sine=f=300:r=16000:d=1.5", "-shortest", "-c:v", "libx264", "-pix_fmt", "yuv420p",
                    "-c:a", "aac", str(secret)], check=True)
    uploads = tmp_path_factory.mktemp("client_side")
    files = {"secret": secret}
    files["m3u8"] = uploads / "talk.m3u8"
    files["m3u8"].write_text(f"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:1.5,\n{secret}\n#EXT-X-ENDLIST\n")
    files["ffconcat"] = uploads / "talk.ogg"
    files["ffconcat"].write_text(f"ffconcat version 1.0\nfile '{secret}'\n")
    files["concat"] = uploads / "talk.webm"
    files["concat"].write_text(f"file '{secret}'\n")
    files["sdp"] = uploads / "talk.mp3"
    files["sdp"].write_text("v=0\no=- 0 0 IN IP4 127.0.0.1\ns=x\nc=IN IP4 127.0.0.1\nt=0 0\nm=audio 5004 RTP/AVP 0\n")
    rng = np.random.default_rng(0)
    t = np.arange(16000) / 16000
    files["wav"] = uploads / "me.wav"
    sf.write(files["wav"], (0.3 * np.sin(2 * np.pi * 220 * t) * (1 + 0.1 * rng.standard_normal(t.size))).astype(np.float32),
             16000, subtype="PCM_16")
    files["webm"] = uploads / "recording.webm"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(files["wav"]), "-c:a", "libopus", str(files["webm"])], check=True)
    return files


@pytest.fixture()
def ffmpeg_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[list[str]]]:
    """Every subprocess command started meanwhile (subprocess.run and ffmpeg-python both use Popen)."""
    calls: list[list[str]] = []

    class Spy(subprocess.Popen):  # type: ignore[type-arg]
        def __init__(self, args: Any, *rest: Any, **kwargs: Any) -> None:
            calls.append([str(a) for a in args])
            super().__init__(args, *rest, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", Spy)
    yield calls


def _jobs(live_server: LiveServer) -> list[Path]:
    return [p for p in live_server.state.settings.jobs_dir.iterdir() if not p.name.startswith(".")]


@pytest.mark.parametrize("field, key, what", [("audio", "m3u8", "an HLS/M3U playlist"), ("video", "m3u8", "an HLS/M3U playlist"),
                                              ("audio", "ffconcat", "an ffconcat list"), ("video", "concat", "a concat list"),
                                              ("audio", "sdp", "an SDP session description")])
def test_uploads_naming_other_files_are_refused_before_ffmpeg(client: httpx.Client, live_server: LiveServer,
                                                             server_files: dict[str, Path], ffmpeg_calls: list[list[str]],
                                                             field: str, key: str, what: str) -> None:
    before = _jobs(live_server)
    upload = server_files[key]
    files = {field: (upload.name, upload.read_bytes())}
    if field == "video":
        files["audio"] = (server_files["wav"].name, server_files["wav"].read_bytes())
    response = client.post("/v1/listen", files=files, data={"text": "Hi."})
    kind = "audio file" if field == "audio" else "video"
    assert_error(response, 400, f"{field} upload {upload.name!r}: not a readable {kind}: {what}")
    assert "playlists and lists of other files are refused" in response.json()["error"]
    assert str(server_files["secret"]) not in response.text
    assert _jobs(live_server) == before  # no job
    # ffmpeg/ffprobe never opened the upload (the valid wav of the video case is read by soundfile)
    assert not [c for c in ffmpeg_calls if c and Path(c[0]).name in ("ffmpeg", "ffprobe")], ffmpeg_calls
    assert not [p for p in live_server.state.settings.jobs_dir.iterdir() if p.name.startswith(".upload-")]


def test_a_browser_recording_is_decoded_with_its_demuxer_pinned(client: httpx.Client, live_server: LiveServer,
                                                               server_files: dict[str, Path],
                                                               ffmpeg_calls: list[list[str]]) -> None:
    webm = server_files["webm"]
    response = client.post("/v1/listen", files={"audio": (webm.name, webm.read_bytes())}, data={"text": "Yes."})
    assert response.status_code == 202, response.text
    decode = [c for c in ffmpeg_calls if Path(c[0]).name == "ffmpeg" and "pcm_s16le" in c]
    assert len(decode) == 1, ffmpeg_calls
    cmd = decode[0]
    i = cmd.index("-i")
    assert cmd[i + 1].startswith("file:/")  # no part of the name read as a protocol
    options = dict(zip(cmd[1:i:2], cmd[2:i:2]))
    assert options["-f"] == "matroska" and options["-protocol_whitelist"] == "file,pipe"
    assert wait_job(client, response.json()["id"])["status"] == "done"


# ---------------------------------------------------------------------------------------------
# Server paths
# ---------------------------------------------------------------------------------------------
def _server_paths(live_server: LiveServer) -> list[str]:
    synth = live_server.state.service.synth
    return [str(live_server.state.settings.jobs_dir), str(synth.model_dir.resolve().parent), tempfile.gettempdir() + "/"]


def test_health_meta_and_job_records_name_no_server_path(client: httpx.Client, live_server: LiveServer,
                                                        server_files: dict[str, Path]) -> None:
    health = client.get("/health")
    assert health.json()["models"]["avflow"] == "avflow" and health.json()["models"]["t2t"] == "t2t"
    wav = server_files["wav"]
    response = client.post("/v1/listen", files={"audio": (wav.name, wav.read_bytes())}, data={"text": "Hello."})
    assert response.status_code == 202, response.text
    job = wait_job(client, response.json()["id"])
    assert job["status"] == "done", job
    meta = client.get(job["files"]["meta.json"])
    assert meta.json()["components"]["avflow"] == "avflow"
    for text in (health.text, meta.text, client.get(job["url"]).text):
        for path in _server_paths(live_server):
            assert path not in text, (path, text[:400])
    on_disk = live_server.state.settings.jobs_dir / job["id"] / "result" / "meta.json"
    assert json.loads(on_disk.read_text()) == meta.json()  # the file itself was rewritten (atomically)
    assert not [p for p in on_disk.parent.iterdir() if p.name.endswith(".tmp.json")]


def test_upload_names_are_repeated_without_their_folders(client: httpx.Client, server_files: dict[str, Path]) -> None:
    wav = server_files["wav"]
    response = client.post("/v1/listen", files={"audio": ("/home/someone/secret/me.wav", wav.read_bytes())},
                           data={"text": "Hi."})
    assert response.status_code == 202 and response.json()["request"]["audio"] == "me.wav"
    wait_job(client, response.json()["id"])


# ---------------------------------------------------------------------------------------------
# Headers, Host and Origin
# ---------------------------------------------------------------------------------------------
def _assert_security_headers(response: httpx.Response) -> None:
    headers = response.headers
    assert headers["x-content-type-options"] == "nosniff", (response.url, dict(headers))
    assert headers["x-frame-options"] == "DENY"
    csp = headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "object-src 'none'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp


def test_every_answer_carries_security_headers(client: httpx.Client) -> None:
    answers = [client.get("/"), client.get("/static/app.js"), client.get("/static/style.css"), client.get("/health"),
               client.get("/openapi.json"), client.get("/v1/jobs/" + "0" * 32), client.get("/static/nothing.js"),
               client.post("/v1/synthesize", json={"text": ""}),
               client.post("/v1/synthesize", content=b"x" * 70_000, headers={"content-type": "application/json"}),
               client.get("/", headers={"host": "rebind.evil.example"})]
    assert [a.status_code for a in answers] == [200, 200, 200, 200, 200, 404, 404, 400, 413, 400]
    for answer in answers:
        _assert_security_headers(answer)
    assert "ws://127.0.0.1:" in answers[0].headers["content-security-policy"]  # the page's own stream


def test_the_page_needs_no_inline_code(client: httpx.Client) -> None:
    """The CSP allows no inline scripts, styles or handlers: the page must not have any."""
    page = client.get("/").text
    assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", page) == []
    assert "<style" not in page and not re.search(r"\sstyle=", page)
    assert not re.search(r"\son[a-z]+=", page) and "javascript:" not in page


def test_a_foreign_host_is_refused_over_http(live_server: LiveServer) -> None:
    """DNS rebinding: a page on rebind.evil.example whose name resolves to 127.0.0.1."""
    port = urlsplit(live_server.url).port
    for method, path in (("GET", "/health"), ("GET", "/"), ("POST", "/v1/synthesize")):
        status, body = _raw(port, method, path, {"Host": f"rebind.evil.example:{port}"})
        assert status == 400 and b"DNS rebinding" in body and b"--allow-host" in body, body
    assert _raw(port, "GET", "/health", {"Host": f"localhost:{port}"})[0] == 200


def test_a_cross_origin_post_is_refused(client: httpx.Client, live_server: LiveServer) -> None:
    before = client.get("/health").json()["jobs"]
    response = client.post("/v1/synthesize", json={"text": "Hello."}, headers={"Origin": "http://evil.example"})
    assert_error(response, 403, "cross-origin request refused")
    assert client.get("/health").json()["jobs"] == before  # no job
    same = client.post("/v1/synthesize", json={"text": "Hello."}, headers={"Origin": live_server.url})
    assert same.status_code == 202
    wait_job(client, same.json()["id"])


@pytest.mark.parametrize("host, origin, reason", [
    ("127.0.0.1:{port}", "http://evil.example", "cross-origin request refused"),
    ("127.0.0.1:{port}", "http://127.0.0.1:1", "cross-origin request refused"),
    ("127.0.0.1:{port}", "null", "cross-origin request refused"),
    ("rebind.evil.example:{port}", "http://rebind.evil.example:{port}", "refused (DNS rebinding guard; see --allow-host)"),
])
def test_websockets_from_another_origin_or_host_are_closed_with_policy_violation(
        live_server: LiveServer, host: str, origin: str, reason: str) -> None:
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    port = urlsplit(live_server.url).port
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    url = f"ws://{host.format(port=port)}/v1/stream"
    with connect(url, sock=sock, origin=origin.format(port=port)) as ws:  # type: ignore[arg-type]
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=30)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
    assert reason in closed.value.rcvd.reason


def test_a_same_origin_websocket_streams(live_server: LiveServer) -> None:
    from websockets.sync.client import connect

    with connect(live_server.ws_url, origin=live_server.url) as ws:  # type: ignore[arg-type]
        ws.send(json.dumps({"text": "Hi."}))
        assert json.loads(ws.recv(timeout=30))["type"] == "accepted"


# ---------------------------------------------------------------------------------------------
# Requests that must end cleanly
# ---------------------------------------------------------------------------------------------
def test_cancel_mid_stream_gets_a_close_frame(live_server: LiveServer) -> None:
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    text = " ".join(f"This is sentence number {n}, and it goes on." for n in range(1, 8))
    with connect(live_server.ws_url, max_size=None) as ws:
        ws.send(json.dumps({"text": text}))
        assert json.loads(ws.recv(timeout=30))["type"] == "accepted"
        assert json.loads(ws.recv(timeout=60))["type"] == "chunk"
        ws.send(json.dumps({"type": "cancel"}))
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                ws.recv(timeout=60)  # what was in flight, then the close
    assert closed.value.rcvd is not None, "the server dropped the connection without a close frame"
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (1000, "cancelled by the client")


def test_a_lone_surrogate_is_refused_before_a_job_exists(client: httpx.Client, live_server: LiveServer) -> None:
    from websockets.sync.client import connect

    before = _jobs(live_server)
    response = client.post("/v1/synthesize", content=b'{"text": "Hello \\ud800 there."}',
                           headers={"content-type": "application/json"})
    assert_error(response, 422, "text is not valid Unicode: a lone surrogate U+D800 at character 6")
    assert _jobs(live_server) == before
    assert client.get("/health").json()["status"] == "ok"
    with connect(live_server.ws_url) as ws:
        ws.send('{"text": "Hello \\udc00."}')
        message = json.loads(ws.recv(timeout=30))
    assert message["type"] == "error" and message["status"] in (400, 422) and "surrogate" in message["message"]
    assert _jobs(live_server) == before


def _raw(port: int, method: str, path: str, headers: dict[str, str]) -> tuple[int, bytes]:
    """A request with exactly these headers (httpx and http.client set Host themselves)."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        lines = [f"{method} {path} HTTP/1.1", *(f"{k}: {v}" for k, v in headers.items()), "Content-Length: 0",
                 "Connection: close", "", ""]
        sock.sendall("\r\n".join(lines).encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body
