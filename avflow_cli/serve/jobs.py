"""Job folders on disk: one folder per request, its state in ``job.json``, results in ``result/``.

Layout (``ROOT`` is ``--jobs``)::

    ROOT/.serve.lock         held (flock) by the one server using ROOT
    ROOT/<id>/job.json       state: queued → running → done | failed (written atomically)
    ROOT/<id>/inputs/        listening-mode uploads (participant.wav, participant.mp4)
    ROOT/<id>/result/        Synthesizer.save's folder: speech.wav, motion.npz, meta.json, preview.mp4

Ids are 32 random hex digits, so a job cannot be guessed, and every path the server opens is
built from a checked id and a name from :data:`RESULT_FILES` — never from a client's path.
A server that starts on a ROOT left by a killed one marks that server's unfinished jobs as
failed (they cannot resume: the worker that ran them is gone) and removes their partial files;
a job recorded done whose results are not all there (:func:`results_complete`) is failed too,
and every job folder loses its leftover temporaries; finished jobs stay servable until they
expire. A folder whose ``job.json`` is unreadable is removed rather than trusted. Results are
written atomically (``Synthesizer.save`` renames a complete temporary folder into place, meta.json
and job.json are replaced by rename), and a job is marked done only after that.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import re
import secrets
import shutil
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from avflow_cli.errors import AvflowError
from avflow_cli.fsutil import atomic_path

log = logging.getLogger("avflow.serve")

JOB_FILE = "job.json"
RESULT_DIR = "result"
INPUT_DIR = "inputs"
LOCK_FILE = ".serve.lock"
UPLOAD_PREFIX = ".upload-"  # uploads being checked, before they belong to a job
RESULT_FILES: dict[str, str] = {  # the only names ever served, with their media types
    "speech.wav": "audio/wav",
    "motion.npz": "application/octet-stream",
    "preview.mp4": "video/mp4",
    "meta.json": "application/json",
}
STATES = ("queued", "running", "done", "failed")
_ID = re.compile(r"^[0-9a-f]{32}$")
INTERRUPTED = "interrupted: the server stopped before this job finished; submit it again"
INCOMPLETE = "interrupted: the server stopped while writing this job's results; submit it again"
REQUIRED_RESULTS = ("speech.wav", "motion.npz", "meta.json")  # preview.mp4 too when meta.json names one


def results_complete(result: Path) -> bool:
    """Whether a result folder holds every file its job wrote, each non-empty, and a readable meta.json
    (a folder Synthesizer.save renamed into place is; a server killed while rewriting it may not be)."""
    try:
        if not result.is_dir() or result.is_symlink():
            return False
        for name in REQUIRED_RESULTS:
            path = result / name
            if path.is_symlink() or not path.is_file() or path.stat().st_size == 0:
                return False
        meta = json.loads((result / "meta.json").read_text())
        preview = str(meta.get("preview", "none")) if isinstance(meta, dict) else "none"
    except (OSError, ValueError):
        return False
    if not preview.startswith("none"):
        path = result / "preview.mp4"
        return path.is_file() and not path.is_symlink() and path.stat().st_size > 0
    return True


def valid_job_id(job_id: str) -> bool:
    """True for ids this server could have made (32 lowercase hex digits)."""
    return bool(_ID.fullmatch(job_id))


@dataclass
class Job:
    """One request's record, as stored in ``job.json``."""

    id: str
    kind: str  # "synthesize" | "listen"
    request: dict[str, Any]
    status: str = "queued"
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    error: str | None = None
    result: dict[str, Any] | None = None  # meta.json of a done job (seconds, frames, timings …)
    server: str = ""  # id of the server process that accepted it

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Job:
        job = cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})
        if not valid_job_id(job.id) or job.status not in STATES or not isinstance(job.request, dict):
            raise ValueError("not a job record")
        return job


class JobStore:
    """Thread-safe job records backed by job folders; see the module docstring for the layout."""

    def __init__(self, root: Path, *, ttl_s: float, server_id: str) -> None:
        self.root = Path(root)
        self.ttl_s = ttl_s
        self.server_id = server_id
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            self._lock_fh = open(self.root / LOCK_FILE, "a+")  # noqa: SIM115 (held for the server's life)
        except OSError as err:
            raise AvflowError(f"{self.root}: cannot use as the jobs folder ({err.strerror})") from err
        try:
            fcntl.flock(self._lock_fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            self._lock_fh.close()
            raise AvflowError(f"{self.root}: another `avflow serve` is using this jobs folder; give --jobs DIR") from err
        self.recovered = self._recover()

    def close(self) -> None:
        """Release the folder lock (the process exiting releases it too)."""
        with contextlib.suppress(OSError):
            fcntl.flock(self._lock_fh, fcntl.LOCK_UN)
            self._lock_fh.close()

    # ------------------------------------------------------------------------------------------
    def _recover(self) -> dict[str, int]:
        """Load the jobs already on disk; fail the unfinished ones of a dead server, drop broken ones."""
        counts = {"kept": 0, "interrupted": 0, "removed": 0}
        for folder in sorted(self.root.iterdir()):
            if folder.name.startswith(UPLOAD_PREFIX):  # a dead server's unchecked upload
                shutil.rmtree(folder, ignore_errors=True)
                continue
            if not folder.is_dir() or not valid_job_id(folder.name):
                continue
            try:
                job = Job.from_json(json.loads((folder / JOB_FILE).read_text()))
                if job.id != folder.name:
                    raise ValueError("id differs from its folder")
            except (OSError, ValueError, TypeError, KeyError) as err:
                log.warning("removing job folder %s: unreadable job record (%s)", folder, err)
                shutil.rmtree(folder, ignore_errors=True)
                counts["removed"] += 1
                continue
            if job.finished is not None and time.time() - job.finished >= self.ttl_s:  # expired meanwhile
                shutil.rmtree(folder, ignore_errors=True)
                counts["removed"] += 1
                continue
            incomplete = job.status == "done" and not results_complete(folder / RESULT_DIR)
            if job.status in ("queued", "running") or incomplete:
                self._clear_files(job.id)
                job.status, job.finished = "failed", (job.finished if incomplete else None) or time.time()
                job.error, job.result = (INCOMPLETE if incomplete else INTERRUPTED), None
                self._write(job)
                counts["interrupted"] += 1
            else:
                self._clear_files(job.id, keep=(RESULT_DIR,) if job.status == "done" else ())
                counts["kept"] += 1
            self._jobs[job.id] = job
        return counts

    def _clear_files(self, job_id: str, keep: tuple[str, ...] = ()) -> None:
        """Remove everything of a job but its record and ``keep`` (partial results, temporaries
        such as a half-written ``.result.….tmp`` folder, inputs)."""
        folder = self.root / job_id
        for entry in folder.iterdir():
            if entry.name == JOB_FILE or (entry.name in keep and entry.is_dir() and not entry.is_symlink()):
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)

    def _write(self, job: Job) -> None:
        with atomic_path(self.root / job.id / JOB_FILE) as tmp:
            tmp.write_text(json.dumps(asdict(job), indent=1))

    # ------------------------------------------------------------------------------------------
    def create(self, kind: str, request: dict[str, Any]) -> Job:
        """A new queued job with its folder and record written."""
        job = Job(id=secrets.token_hex(16), kind=kind, request=dict(request), server=self.server_id)
        (self.root / job.id).mkdir()
        with self._lock:
            self._write(job)
            self._jobs[job.id] = job
        return job

    def update(self, job_id: str, **changes: Any) -> Job | None:
        """Change fields of a job and write its record; returns a copy (None when it was deleted)."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                return None
            for key, value in changes.items():
                setattr(job, key, value)
            if (self.root / job_id).is_dir():  # deleted meanwhile: keep only the memory record
                self._write(job)
            return Job(**asdict(job))

    def get(self, job_id: str) -> Job | None:
        """A copy of the job's record, or None for an unknown, malformed or expired id."""
        if not valid_job_id(job_id):
            return None
        with self._lock:
            job = self._jobs.get(job_id)
            return None if job is None else Job(**asdict(job))

    def delete(self, job_id: str) -> bool:
        """Remove a job's folder, then forget it (a client that sees 404 finds no files left);
        False when there was no such job."""
        with self._lock:
            known = valid_job_id(job_id) and job_id in self._jobs
        if not known:
            return False
        shutil.rmtree(self.root / job_id, ignore_errors=True)
        with self._lock:
            return self._jobs.pop(job_id, None) is not None

    def upload_dir(self) -> Path:
        """A fresh private folder for checking uploads (removed on the next start if left behind)."""
        import tempfile

        return Path(tempfile.mkdtemp(prefix=UPLOAD_PREFIX, dir=self.root))

    def unfinished(self) -> list[str]:
        """Ids of queued and running jobs."""
        with self._lock:
            return [j.id for j in self._jobs.values() if j.status in ("queued", "running")]

    def folder(self, job_id: str, part: str) -> Path:
        """``ROOT/<id>/<part>`` for a checked id and part (``inputs`` or ``result``)."""
        if not valid_job_id(job_id) or part not in (INPUT_DIR, RESULT_DIR):
            raise ValueError(f"bad job folder {job_id!r}/{part!r}")
        return self.root / job_id / part

    def result_file(self, job_id: str, name: str) -> Path | None:
        """The path of a finished job's result file, or None (unknown job or name, not ready, gone)."""
        job = self.get(job_id)
        if job is None or job.status != "done" or name not in RESULT_FILES:
            return None
        path = self.folder(job_id, RESULT_DIR) / name
        root = self.root.resolve()
        try:
            real = path.resolve(strict=True)
        except (OSError, RuntimeError):
            return None
        if not real.is_relative_to(root / job_id) or not real.is_file():  # a link out of the job: refuse
            return None
        return real

    def expires_at(self, job: Job) -> float | None:
        return None if job.finished is None else job.finished + self.ttl_s

    def expire(self, now: float | None = None) -> list[str]:
        """Remove finished jobs older than the time to live; returns their ids."""
        now = time.time() if now is None else now
        with self._lock:
            old = [j.id for j in self._jobs.values() if j.finished is not None and now - j.finished >= self.ttl_s]
        for job_id in old:
            self.delete(job_id)
        if old:
            log.info("expired %d job(s)", len(old))
        return old

    def counts(self) -> dict[str, int]:
        """Jobs per state (for /health)."""
        with self._lock:
            out = {state: 0 for state in STATES}
            for job in self._jobs.values():
                out[job.status] += 1
            return out
