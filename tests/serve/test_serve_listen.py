"""Listening mode (``POST /v1/listen``): uploads are limited and checked like CLI input; the job runs
once ``Synthesizer`` takes participant inputs, and until then the answer is a clear 501."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import soundfile as sf
from serve_helpers import LiveServer, assert_error, wait_job


def _tone(path: Path, seconds: float, sr: int = 16000) -> Path:
    t = np.arange(int(seconds * sr)) / sr
    sf.write(path, 0.3 * np.sin(2 * np.pi * 220 * t), sr, subtype="PCM_16")
    return path


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("listen_media")
    files = {"wav": _tone(root / "user.wav", 1.0), "long": _tone(root / "long.wav", 6.0, sr=8000)}
    files["video"] = root / "user.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=64x64:rate=30:duration=1",
                    "-pix_fmt", "yuv420p", str(files["video"])], check=True)
    files["webm"] = root / "recording.webm"  # what a browser's MediaRecorder sends
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(files["wav"]), "-c:a", "libopus", str(files["webm"])], check=True)
    files["garbage"] = root / "noise.wav"
    files["garbage"].write_bytes(b"RIFF not really a wave file" * 10)
    files["big"] = root / "big.wav"
    files["big"].write_bytes(np.random.default_rng(0).bytes(500_000))  # over the 400 kB test limit
    return files


def _post(client: httpx.Client, files: dict[str, Path], **fields: str) -> httpx.Response:
    opened = {name: (path.name, path.read_bytes()) for name, path in files.items()}
    return client.post("/v1/listen", files=opened, data=fields)


def _no_leftover_uploads(live_server: LiveServer) -> None:
    assert not [p for p in live_server.state.settings.jobs_dir.iterdir() if p.name.startswith(".upload-")]


@pytest.mark.parametrize("audio_key, with_video", [("wav", False), ("wav", True), ("webm", False)])
def test_valid_uploads_are_accepted_or_clearly_unavailable(client: httpx.Client, live_server: LiveServer,
                                                           serve_service: Any, media: dict[str, Path],
                                                           audio_key: str, with_video: bool) -> None:
    files = {"audio": media[audio_key], **({"video": media["video"]} if with_video else {})}
    response = _post(client, files, text="I see.", seed="2")
    if serve_service.supports_listening:
        assert response.status_code == 202, response.text
        job = wait_job(client, response.json()["id"])
        assert job["status"] == "done", job
        assert job["request"]["audio"] == media[audio_key].name
    else:
        assert_error(response, 501, "listening mode is not available")
        assert "uploaded files were checked and are valid" in response.json()["error"]
        assert client.get("/health").json()["listening"] is False
    _no_leftover_uploads(live_server)


@pytest.mark.parametrize(
    "files, fields, status, message",
    [
        ({"audio": "garbage"}, {}, 400, "audio upload 'noise.wav': not a readable audio file"),
        ({"audio": "long"}, {}, 400, "6.0 s long; this server accepts at most 5 s"),
        ({"audio": "wav", "video": "garbage"}, {}, 400, "video upload 'noise.wav': not a readable video"),
        ({"video": "video"}, {}, 400, "give the user's speech as the form file field 'audio'"),
        ({"audio": "wav"}, {"seed": "x"}, 400, "form field 'seed': 'x' is not a valid int"),
        ({"audio": "wav"}, {"steps": "99"}, 400, "steps must be between 1 and 8"),
        ({"audio": "wav"}, {"text": "c" * 401}, 413, "at most 400"),
        ({"audio": "big"}, {}, 413, "request body too large"),
    ],
)
def test_bad_uploads_get_one_line_errors(client: httpx.Client, live_server: LiveServer, media: dict[str, Path],
                                         files: dict[str, str], fields: dict[str, str], status: int, message: str) -> None:
    response = _post(client, {name: media[key] for name, key in files.items()}, **fields)
    assert_error(response, status, message)
    _no_leftover_uploads(live_server)
    assert client.get("/health").json()["status"] == "ok"


def test_malformed_multipart_and_streamed_oversized_body(client: httpx.Client, live_server: LiveServer) -> None:
    broken = client.post("/v1/listen", content=b"--xyz\r\nContent-Disposition: form-data; name=\"audio\"\r\n\r\nabc",
                         headers={"content-type": "multipart/form-data; boundary=xyz"})
    assert broken.status_code == 400 and "Traceback" not in broken.text

    def chunks():  # no Content-Length: the limit must trip while the file part is being read
        yield b'--xyz\r\nContent-Disposition: form-data; name="audio"; filename="a.wav"\r\n\r\n'
        for _ in range(60):
            yield b"0" * 10_000

    streamed = client.post("/v1/listen", content=chunks(), headers={"content-type": "multipart/form-data; boundary=xyz"})
    assert_error(streamed, 413, "request body too large")
    assert client.get("/health").json()["status"] == "ok"
