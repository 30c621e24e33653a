"""Fixtures of the serve tests: the tiny model loaded once, and a live server per test module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from serve_helpers import LiveServer, start_server

from avflow_cli.serve.settings import ServeSettings


@pytest.fixture(scope="session")
def serve_service(tiny_listening_model: Path) -> Any:
    """The tiny listening model loaded once, as `avflow serve` loads it (Griffin-Lim keeps the tests quick)."""
    from avflow_cli.serve.engine import ModelService

    return ModelService.load(tiny_listening_model, vocoder="griffinlim", device="cpu")


@pytest.fixture(scope="module")
def serve_settings(tmp_path_factory: pytest.TempPathFactory) -> ServeSettings:
    """Small limits, so every limit is reachable in a test."""
    return ServeSettings(jobs_dir=tmp_path_factory.mktemp("jobs"), queue_size=2, max_text_chars=400, max_steps=8,
                         max_upload_bytes=400_000, max_body_bytes=64_000, max_upload_seconds=5.0, job_ttl_s=600.0)


@pytest.fixture(scope="module")
def live_server(serve_service: Any, serve_settings: ServeSettings) -> Iterator[LiveServer]:
    server = start_server(serve_service, serve_settings)
    yield server
    server.stop()


@pytest.fixture()
def client(live_server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_server.url, timeout=60) as c:
        yield c
