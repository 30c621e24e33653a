"""Helpers for the serve tests: real servers (uvicorn in a thread, or ``avflow serve`` in a subprocess),
always on 127.0.0.1 with a free port, and checks shared by the test files."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx

from avflow_cli.serve.settings import ServeSettings

AVFLOW = str(Path(sys.executable).with_name("avflow"))


@dataclass
class LiveServer:
    """A running server in this process: its URL and its shared state (worker, store, service)."""

    url: str
    app: Any
    server: Any
    thread: threading.Thread

    @property
    def state(self) -> Any:
        return self.app.state.avflow

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://") + "/v1/stream"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


def start_server(service: Any, settings: ServeSettings) -> LiveServer:
    """uvicorn in a thread on 127.0.0.1, port chosen by the OS; returns once it accepts connections."""
    import uvicorn

    from avflow_cli.serve.app import create_app

    app = create_app(service, settings)
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", ws_max_size=settings.max_body_bytes)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("test server did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    return LiveServer(f"http://127.0.0.1:{port}", app, server, thread)


def with_settings(settings: ServeSettings, **changes: Any) -> ServeSettings:
    return replace(settings, **changes)


def wait_job(client: httpx.Client, job_id: str, timeout: float = 120.0) -> dict[str, Any]:
    """Poll a job until it is done or failed."""
    deadline = time.monotonic() + timeout
    while True:
        job = client.get(f"/v1/jobs/{job_id}").json()
        if job.get("status") in ("done", "failed"):
            return job
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} still {job.get('status')} after {timeout} s")
        time.sleep(0.05)


def wait_idle(state: Any, timeout: float = 60.0) -> None:
    """Wait until the worker runs nothing and nothing waits."""
    deadline = time.monotonic() + timeout
    while state.worker.busy or state.worker.waiting:
        if time.monotonic() > deadline:
            raise AssertionError("the worker stayed busy")
        time.sleep(0.02)


# ---------------------------------------------------------------------------------------------
# `avflow serve` as a subprocess
# ---------------------------------------------------------------------------------------------
@dataclass
class CliServer:
    proc: subprocess.Popen
    url: str
    log: Path

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as when a machine or an OOM killer stops it."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


def start_cli_server(model: Path, jobs: Path, log: Path, *extra: str, timeout: float = 120.0) -> CliServer:
    """``avflow serve --port 0`` in a subprocess; the port is read from uvicorn's start line."""
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    fh = open(log, "w")  # noqa: SIM115 (the subprocess writes it for its whole life)
    proc = subprocess.Popen([AVFLOW, "serve", "--model", str(model), "--port", "0", "--jobs", str(jobs),
                             "--vocoder", "griffinlim", "--device", "cpu", *extra], stdout=fh, stderr=subprocess.STDOUT,
                            env=env)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = re.search(r"Uvicorn running on (http://127\.0\.0\.1:\d+)", log.read_text())
        if found:
            return CliServer(proc, found.group(1), log)
        if proc.poll() is not None:
            raise AssertionError(f"avflow serve exited with {proc.returncode}:\n{log.read_text()}")
        time.sleep(0.1)
    proc.kill()
    raise AssertionError(f"avflow serve did not start in {timeout} s:\n{log.read_text()}")


def assert_error(response: httpx.Response, status: int, message: str) -> None:
    """A one-line JSON error of ``status`` containing ``message``, and no traceback."""
    assert response.status_code == status, (response.status_code, response.text)
    body = response.json()
    assert set(body) == {"error"} and message in body["error"], body
    assert "Traceback" not in response.text and "\n" not in body["error"]


def raw_get(base_url: str, path: str) -> tuple[int, bytes]:
    """GET ``path`` exactly as written (no client-side normalisation of ``..`` or ``%2F``)."""
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(base_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()
