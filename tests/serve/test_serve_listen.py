"""Listening mode (``POST /v1/listen``): uploads are limited and checked like ``--participant-audio``
/ ``--participant-video``; the job runs ``Synthesizer.prepare_participant`` + ``synthesize``."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import soundfile as sf
from serve_helpers import LiveServer, assert_error, start_server, wait_job

from avflow_cli import constants as K


def _tone(path: Path, seconds: float, sr: int = 16000, channels: int = 1, level: float = 0.3) -> Path:
    t = np.arange(int(seconds * sr)) / sr
    wave = level * np.sin(2 * np.pi * 220 * t)
    sf.write(path, np.stack([wave] * channels, axis=1) if channels > 1 else wave, sr, subtype="PCM_16")
    return path


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from avflow_cli.render.demo_avatar import NEUTRAL_PARAMS, PARAM_INDEX, render_video

    root = tmp_path_factory.mktemp("listen_media")
    assert shutil.which("flite"), "flite is needed (make system-deps)"
    files = {"speech": root / "user.wav"}
    subprocess.run(["flite", "-voice", "rms", "-t", "That sounds good to me.", "-o", str(files["speech"])], check=True)
    files["long"] = _tone(root / "long.wav", 6.0)
    files["narrow"] = _tone(root / "phone.wav", 1.0, sr=8000)
    files["stereo"] = _tone(root / "stereo.wav", 1.0, channels=2)
    files["silent"] = _tone(root / "silent.wav", 1.0, level=0.0)
    params = np.repeat(NEUTRAL_PARAMS[None], 45, axis=0).astype(np.float32)
    params[15:30, PARAM_INDEX["smile"]] = 1.0  # the user smiles
    files["video"] = root / "user.mp4"
    render_video(files["video"], params, None, K.FACE_RATE, size=192, palette="participant")
    files["webm"] = root / "recording.webm"  # what a browser's MediaRecorder sends
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(files["speech"]), "-c:a", "libopus", str(files["webm"])], check=True)
    files["garbage"] = root / "noise.wav"
    files["garbage"].write_bytes(b"RIFF not really a wave file" * 10)
    files["big"] = root / "big.wav"
    files["big"].write_bytes(np.random.default_rng(0).bytes(500_000))  # over the 400 kB test limit
    return files


def _post(client: httpx.Client, files: dict[str, Path], **fields: str) -> httpx.Response:
    opened = {name: (path.name, path.read_bytes()) for name, path in files.items()}
    return client.post("/v1/listen", files=opened, data=fields)


def _no_leftover_uploads(live_server: LiveServer) -> None:
    root = live_server.state.settings.jobs_dir
    assert not [p for p in root.iterdir() if p.name.startswith(".upload-")]
    assert not list(root.glob("*/inputs"))  # a finished job's uploads are removed


@pytest.mark.parametrize("audio_key, with_video, text", [("speech", False, "I see."), ("speech", True, "I see."),
                                                         ("webm", True, ""), ("stereo", False, "Yes.")])
def test_the_avatar_listens_to_uploads(client: httpx.Client, live_server: LiveServer, media: dict[str, Path],
                                       audio_key: str, with_video: bool, text: str) -> None:
    files = {"audio": media[audio_key], **({"video": media["video"]} if with_video else {})}
    fields = {"text": text, "seed": "2", **({"channel": "1"} if audio_key == "stereo" else {})}
    response = _post(client, files, **fields)
    assert response.status_code == 202, response.text
    assert response.json()["kind"] == "listen" and response.json()["request"]["audio"] == media[audio_key].name
    job = wait_job(client, response.json()["id"])
    assert job["status"] == "done", job
    record = job["result"]["participant"]
    assert "tokens" in record  # the participant's voice went through the token extractor
    assert ("visual" in record and "face found" in record["visual"]) if with_video else True
    seconds = sf.info(str(media["speech"])).duration if audio_key != "stereo" else 1.0
    if not text:  # only listening: the timeline is the user's recording
        assert job["result"]["seconds"] == pytest.approx(seconds, abs=0.05)
    assert set(job["files"]) >= {"speech.wav", "motion.npz", "preview.mp4"}
    _no_leftover_uploads(live_server)


@pytest.mark.parametrize(
    "files, fields, status, message",
    [
        ({"audio": "garbage"}, {}, 400, "audio upload 'noise.wav': not a readable audio file: a text file"),
        ({"audio": "long"}, {}, 400, "6.0 s long; this server accepts at most 5 s"),
        ({"audio": "narrow"}, {}, 400, "audio upload 'phone.wav': 8000 Hz audio; participant audio needs at least 16000 Hz"),
        ({"audio": "silent"}, {}, 400, "audio upload 'silent.wav': silent"),
        ({"audio": "stereo"}, {}, 400, "say which one is the user with the form field 'channel' 0..1"),
        ({"audio": "stereo"}, {"channel": "7"}, 400, "channel 7 does not exist"),
        ({"audio": "speech", "video": "garbage"}, {}, 400, "video upload 'noise.wav': not a readable video: a text file"),
        ({"video": "video"}, {}, 400, "give the user's speech as the form file field 'audio'"),
        ({"audio": "speech"}, {"seed": "x"}, 400, "form field 'seed': 'x' is not a valid int"),
        ({"audio": "speech"}, {"steps": "99"}, 400, "steps must be between 1 and 8"),
        ({"audio": "speech"}, {"text": "c" * 401}, 413, "at most 400"),
        ({"audio": "big"}, {}, 413, "request body too large: this server accepts at most 0.4 MiB here (--max-upload-mb)"),
    ],
)
def test_bad_uploads_get_one_line_errors(client: httpx.Client, live_server: LiveServer, media: dict[str, Path],
                                         files: dict[str, str], fields: dict[str, str], status: int, message: str) -> None:
    response = _post(client, {name: media[key] for name, key in files.items()}, **fields)
    assert_error(response, status, message)
    assert str(live_server.state.settings.jobs_dir) not in response.text  # no server paths
    _no_leftover_uploads(live_server)
    assert client.get("/health").json()["status"] == "ok"


def test_malformed_multipart_and_streamed_oversized_body(client: httpx.Client) -> None:
    broken = client.post("/v1/listen", content=b"--xyz\r\nContent-Disposition: form-data; name=\"audio\"\r\n\r\nabc",
                         headers={"content-type": "multipart/form-data; boundary=xyz"})
    assert broken.status_code == 400 and "Traceback" not in broken.text

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit must trip while the file part is being read
        yield b'--xyz\r\nContent-Disposition: form-data; name="audio"; filename="a.wav"\r\n\r\n'
        for _ in range(60):
            yield b"0" * 10_000

    streamed = client.post("/v1/listen", content=chunks(), headers={"content-type": "multipart/form-data; boundary=xyz"})
    assert_error(streamed, 413, "request body too large")
    assert client.get("/health").json()["status"] == "ok"


def test_a_model_without_guidance_speaks_but_cannot_only_listen(tiny_avatar_model: Path, serve_settings: Any,
                                                                 media: dict[str, Path], tmp_path: Path) -> None:
    from dataclasses import replace

    from avflow_cli.serve.engine import ModelService

    service = ModelService.load(tiny_avatar_model, vocoder="griffinlim", device="cpu")
    server = start_server(service, replace(serve_settings, jobs_dir=tmp_path / "jobs"))
    try:
        with httpx.Client(base_url=server.url, timeout=60) as c:
            health = c.get("/health").json()
            assert health["guidance"] is False and "without participant guidance" in health["guidance_note"]
            assert_error(_post(c, {"audio": media["speech"]}), 400, "cannot only listen: give it text to say")
            job = wait_job(c, _post(c, {"audio": media["speech"]}, text="Hello.").json()["id"])
            assert job["status"] == "done" and "ignored" in job["result"]["participant"]["guidance"]
            assert any("trained without participant guidance" in w for w in job["result"]["participant"]["warnings"])
    finally:
        server.stop()
