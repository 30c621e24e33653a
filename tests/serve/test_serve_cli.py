"""``avflow serve`` as users start it: one-line start-up errors, and a server killed during jobs
whose successor reports them as failed and keeps serving."""

from __future__ import annotations

import json
import signal
import socket
import time
from pathlib import Path

import httpx
import pytest
from serve_helpers import LiveServer, start_cli_server, wait_job
from typer.testing import CliRunner

from avflow_cli.cli.main import app
from avflow_cli.serve.jobs import INTERRUPTED

runner = CliRunner()


def _one_line_error(result, message: str) -> None:  # noqa: ANN001 (click's Result)
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output


def test_help_explains_the_api_and_the_default_address() -> None:
    result = runner.invoke(app, ["serve", "--help"], terminal_width=200)
    assert result.exit_code == 0
    for words in ("/v1/synthesize", "/v1/stream", "/openapi.json", "127.0.0.1", "--jobs", "--queue"):
        assert words in result.output


def test_missing_model_is_a_one_line_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["serve", "--model", str(tmp_path / "nothing"), "--port", "0", "--jobs", str(tmp_path / "jobs")])
    _one_line_error(result, "no AV-Flow model here")


def test_busy_port_is_a_one_line_error(tiny_avatar_model: Path, tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = runner.invoke(app, ["serve", "--model", str(tiny_avatar_model), "--port", str(port), "--jobs", str(tmp_path)])
    _one_line_error(result, f"127.0.0.1:{port} is already in use")


def test_a_jobs_folder_serves_one_server_only(tiny_avatar_model: Path, live_server: LiveServer) -> None:
    jobs = live_server.state.settings.jobs_dir
    result = runner.invoke(app, ["serve", "--model", str(tiny_avatar_model), "--port", "0", "--jobs", str(jobs),
                                 "--vocoder", "griffinlim"])
    _one_line_error(result, "another `avflow serve` is using this jobs folder")
    assert httpx.get(live_server.url + "/health").json()["status"] == "ok"  # the first one is untouched


def test_server_killed_during_jobs_then_restarted(tiny_avatar_model: Path, tmp_path: Path) -> None:
    jobs = tmp_path / "jobs"
    first = start_cli_server(tiny_avatar_model, jobs, tmp_path / "first.log")
    try:
        text = " ".join(f"Sentence {n} of a longer request." for n in range(6))
        with httpx.Client(base_url=first.url, timeout=60) as c:
            ids = [c.post("/v1/synthesize", json={"text": text, "seed": n}).json()["id"] for n in range(5)]
            time.sleep(0.3)  # the first job is running, the rest are queued
    finally:
        first.kill()
    assert first.proc.returncode == -9
    broken = jobs / ("f" * 32)
    broken.mkdir()
    (broken / "job.json").write_text("{torn")  # a record half-written when the machine died
    (jobs / ".upload-dead").mkdir()  # an upload the dead server was checking

    second = start_cli_server(tiny_avatar_model, jobs, tmp_path / "second.log")
    try:
        with httpx.Client(base_url=second.url, timeout=60) as c:
            states = [c.get(f"/v1/jobs/{job_id}").json() for job_id in ids]
            interrupted = [s for s in states if s["status"] == "failed"]
            assert len(interrupted) >= 4  # at most the first one could finish before the kill
            assert all(s["error"] == INTERRUPTED for s in interrupted)
            assert all(s["status"] in ("done", "failed") for s in states)
            for s in interrupted:
                assert sorted(p.name for p in (jobs / s["id"]).iterdir()) == ["job.json"]  # partial files removed
                assert c.get(f"/v1/jobs/{s['id']}/files/speech.wav").status_code == 404
            health = c.get("/health").json()
            assert health["recovered_jobs"]["interrupted"] == len(interrupted)
            assert health["recovered_jobs"]["removed"] == 1
            assert not broken.exists() and not (jobs / ".upload-dead").exists()
            job = wait_job(c, c.post("/v1/synthesize", json={"text": "Back again."}).json()["id"])
            assert job["status"] == "done"
            on_disk = json.loads((jobs / interrupted[0]["id"] / "job.json").read_text())
            assert on_disk["status"] == "failed"
    finally:
        second.stop()
    assert second.proc.returncode == 130  # Ctrl-C: graceful shutdown, then the shell's 128 + SIGINT
    log = second.log.read_text()
    assert "marked failed" in log and "Traceback" not in log


@pytest.mark.parametrize("host", ["127.0.0.1"])
def test_default_address_is_loopback(host: str) -> None:
    from avflow_cli.cli.serve import serve_command

    defaults = {p.name: p.default for p in __import__("inspect").signature(serve_command).parameters.values()}
    assert defaults["host"].default == host


def test_sigterm_stops_like_ctrl_c_and_leaves_nothing_behind(tiny_avatar_model: Path, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """`kill PID` (SIGTERM, what systemd and docker send): a graceful stop, exit 128 + 15, the
    running job finished or recorded as interrupted, no temporaries in the jobs or temp folder."""
    private_tmp = tmp_path / "tmp"
    private_tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(private_tmp))  # the server's temporaries land here
    jobs = tmp_path / "jobs"
    server = start_cli_server(tiny_avatar_model, jobs, tmp_path / "serve.log", "--allow-host", "avatar.lab.example",
                              "--max-body-mb", "0.01")
    try:
        with httpx.Client(base_url=server.url, timeout=60) as c:
            assert c.get("/health", headers={"host": "avatar.lab.example"}).status_code == 200  # --allow-host
            assert c.get("/health", headers={"host": "other.example"}).status_code == 400
            too_big = c.post("/v1/synthesize", json={"text": "a" * 20_000})
            assert too_big.status_code == 413 and "(--max-body-mb)" in too_big.json()["error"]
            done = wait_job(c, c.post("/v1/synthesize", json={"text": "Hello there."}).json()["id"])
            assert done["status"] == "done"
            running = c.post("/v1/synthesize", json={"text": "One more sentence, please. And another."}).json()["id"]
            time.sleep(0.2)
    finally:
        server.proc.send_signal(signal.SIGTERM)
        server.proc.wait(timeout=60)
    assert server.proc.returncode == 128 + signal.SIGTERM
    log = server.log.read_text()
    assert "Traceback" not in log
    leftovers = [p for p in jobs.rglob("*") if p.name.startswith(".upload-") or ".tmp" in p.name]
    assert leftovers == [] and list(private_tmp.iterdir()) == []
    record = json.loads((jobs / running / "job.json").read_text())
    assert record["status"] in ("done", "failed")  # finished in time, or recorded as interrupted
    assert {p.name for p in (jobs / done["id"] / "result").iterdir()} >= {"meta.json", "motion.npz", "speech.wav"}
