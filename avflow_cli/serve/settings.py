"""The limits one ``avflow serve`` process runs under (all overridable from the command line)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from avflow_cli.checks import MAX_TEXT_CHARS

MiB = 1024 * 1024


def default_jobs_dir() -> Path:
    """Where job folders live unless ``--jobs`` says otherwise: the user's cache folder."""
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "avflow" / "serve" / "jobs"


@dataclass(frozen=True)
class ServeSettings:
    """Limits and places of one server. Sizes in bytes, times in seconds."""

    jobs_dir: Path
    queue_size: int = 8  # requests that may wait for the model (the running one not counted)
    max_text_chars: int = MAX_TEXT_CHARS  # per request, all sentences together
    max_steps: int = 64  # Euler steps a request may ask for
    max_upload_bytes: int = 25 * MiB  # one listening-mode request (audio + video together)
    max_body_bytes: int = 1 * MiB  # every other request body (JSON)
    max_upload_seconds: float = 120.0  # participant audio / video duration
    job_ttl_s: float = 3600.0  # a finished job's files are removed this long after it ended
    janitor_interval_s: float = 30.0  # how often expired jobs are looked for
    preview: bool = True  # render preview.mp4 for every job
    host: str = "127.0.0.1"  # the address it is bound to (--host): requests must name it or an allowed host
    allowed_hosts: tuple[str, ...] = ()  # further Host names it answers to (--allow-host)

    def __post_init__(self) -> None:
        for name in ("queue_size", "max_text_chars", "max_steps", "max_upload_bytes", "max_body_bytes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.job_ttl_s <= 0 or self.janitor_interval_s <= 0 or self.max_upload_seconds <= 0:
            raise ValueError("job_ttl_s, janitor_interval_s and max_upload_seconds must be positive")

    def limits(self) -> dict[str, float | int]:
        """What ``/health`` tells clients (so the page can check input before sending it)."""
        return {
            "queue_size": self.queue_size,
            "max_text_chars": self.max_text_chars,
            "max_steps": self.max_steps,
            "max_upload_bytes": self.max_upload_bytes,
            "max_upload_seconds": self.max_upload_seconds,
            "job_ttl_s": self.job_ttl_s,
        }
