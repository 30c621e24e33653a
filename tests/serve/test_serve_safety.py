"""The server's security faults (docs/serve.md, "Security"): uploads that would make ffmpeg read
server files, server paths in answers, headers, Host/Origin checks, and sloppy ends."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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
