"""Load on ``avflow serve``: N concurrent clients, latency percentiles, throughput, and correctness.

Usage: python benchmarks/serve_load.py [--model pretrained|DIR | --tiny] [--clients 1 4 16]
                                       [--requests 2] [--no-preview] [--vocoder auto]

Starts ``avflow serve`` on 127.0.0.1 (a free port) and, for each N, runs N client threads that
each send ``--requests`` jobs through the whole cycle a user's client runs: ``POST
/v1/synthesize`` → poll ``GET /v1/jobs/{id}`` → download ``speech.wav``. A full queue answers
429; the client waits and retries, and the retries are counted. Latency is submit → speech.wav
downloaded. Nothing may be lost or mixed up: every job must finish, its ``meta.json`` must carry
the client's own text and seed, and its speech must equal, sample for sample, the reference
made for that (text, seed) on the idle server first (texts differ in length, seeds differ).

Then the stream: N concurrent WebSocket clients (exact schedule, with avatar frames) report the
time to the first audio against the time to the whole text — what streaming buys over waiting
for a job.

Without ``--model`` the shipped model is served (``$AVFLOW_MODEL`` chooses another); ``--tiny`` serves a
random tiny model: the numbers are then the server's overhead plus the vocoder and preview
cost, not a trained model's sampling speed. All traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import soundfile as sf
from rich.console import Console
from rich.table import Table


TEXTS = [
    "Hello there.",
    "The birch canoe slid on the smooth planks.",
    "Glue the sheet to the dark blue background. It is easy.",
    "These days a chicken leg is a rare dish.",
    "Rice is often served in round bowls. The juice of lemons makes fine punch.",
    "The box was thrown beside the parked truck.",
    "Four hours of steady work faced us. A large size in stockings is hard to sell.",
    "The hogs were fed chopped corn and garbage.",
]
POLL_S = 0.1
TIMEOUT_S = 600.0


@dataclass
class Outcome:
    latencies: list[float] = field(default_factory=list)
    retries: int = 0
    lost: int = 0
    mixed: int = 0
    audio_s: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)


def _wav_digest(data: bytes) -> tuple[int, str]:
    wav, _ = sf.read(io.BytesIO(data), dtype="int16")
    return len(wav), hashlib.sha256(wav.tobytes()).hexdigest()


def run_job(client: httpx.Client, text: str, seed: int, preview: bool, outcome: Outcome | None = None) -> tuple[bytes, dict]:
    """One job through the whole cycle; retries on 429. Returns (speech.wav bytes, meta)."""
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        response = client.post("/v1/synthesize", json={"text": text, "seed": seed, "preview": preview})
        if response.status_code != 429:
            break
        if outcome is not None:
            with outcome.lock:
                outcome.retries += 1
        time.sleep(min(float(response.headers.get("retry-after", "1")), 1.0))
        if time.monotonic() > deadline:
            raise TimeoutError("queue stayed full")
    response.raise_for_status()
    job = response.json()
    while job["status"] in ("queued", "running"):
        if time.monotonic() > deadline:
            raise TimeoutError(f"job {job['id']} did not finish")
        time.sleep(POLL_S)
        job = client.get(job["url"]).json()
    if job["status"] != "done":
        raise RuntimeError(f"job failed: {job['error']}")
    meta = client.get(job["files"]["meta.json"]).json()
    return client.get(job["files"]["speech.wav"]).content, meta


def client_loop(url: str, index: int, requests: int, preview: bool, refs: dict, outcome: Outcome) -> None:
    with httpx.Client(base_url=url, timeout=120) as client:
        for r in range(requests):
            pair = (index * requests + r) % len(TEXTS)  # every run covers the texts evenly
            text, seed = TEXTS[pair], pair
            start = time.perf_counter()
            try:
                wav, meta = run_job(client, text, seed, preview, outcome)
            except (httpx.HTTPError, RuntimeError, TimeoutError) as err:
                with outcome.lock:
                    outcome.lost += 1
                print(f"client {index}: request lost ({err})", file=sys.stderr)
                continue
            latency = time.perf_counter() - start
            ok = meta["text"] == text and meta["seed"] == seed and _wav_digest(wav) == refs[pair]
            with outcome.lock:
                outcome.latencies.append(latency)
                outcome.audio_s += refs[pair][0] / meta["sample_rate"]
                outcome.mixed += 0 if ok else 1


def stream_once(url: str, text: str, seed: int) -> tuple[float, float, int]:
    """(seconds to the first audio, seconds to the end, chunks) of one stream with avatar frames,
    timed from the connection the server accepted (a 429 is retried after a pause)."""
    from websockets.sync.client import connect

    start = time.perf_counter()
    first, chunks, header = None, 0, {}
    with connect(url.replace("http://", "ws://") + "/v1/stream", max_size=None, open_timeout=60) as ws:
        ws.send(json.dumps({"text": text, "seed": seed, "frames": True}))
        while True:
            data = ws.recv(timeout=TIMEOUT_S)
            if isinstance(data, bytes):
                chunks += 1
                if first is None and header.get("n_audio"):
                    first = time.perf_counter() - start
                continue
            msg = header = json.loads(data)
            if msg["type"] == "error" and msg["status"] == 429:  # busy: try again, as a client would
                time.sleep(0.5)
                return stream_once(url, text, seed)
            if msg["type"] == "error":
                raise RuntimeError(msg["message"])
            if msg["type"] == "end":
                return first or 0.0, time.perf_counter() - start, chunks


def start_server(model: Path, jobs: Path, vocoder: str, log: Path) -> tuple[subprocess.Popen, str]:
    avflow = str(Path(sys.executable).with_name("avflow"))
    fh = open(log, "w")  # noqa: SIM115
    proc = subprocess.Popen([avflow, "serve", "--model", str(model), "--port", "0", "--jobs", str(jobs),
                             "--vocoder", vocoder], stdout=fh, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        found = re.search(r"Uvicorn running on (http://127\.0\.0\.1:\d+)", log.read_text())
        if found:
            return proc, found.group(1)
        if proc.poll() is not None:
            raise SystemExit(f"avflow serve exited:\n{log.read_text()}")
        time.sleep(0.2)
    proc.kill()
    raise SystemExit("avflow serve did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="model directory or shipped name (default: $AVFLOW_MODEL, else pretrained)")
    parser.add_argument("--tiny", action="store_true", help="serve a random tiny model (no trained model needed)")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--requests", type=int, default=2,
                        help="jobs per client (at least enough that every run sends each of the 8 texts once)")
    parser.add_argument("--no-preview", action="store_true", help="jobs without preview.mp4")
    parser.add_argument("--vocoder", default="auto")
    args = parser.parse_args()
    preview = not args.no_preview
    console = Console(width=150)

    with tempfile.TemporaryDirectory(prefix="avflow-serve-load-") as tmp:
        model = args.model
        if args.tiny:
            sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
            from conftest import make_tiny_avatar_models  # the test suite's tiny model (one implementation)

            model = make_tiny_avatar_models(Path(tmp) / "tiny")
        else:
            from avflow_cli.errors import AvflowError
            from avflow_cli.shipped import resolve_model

            try:
                model = resolve_model(model)  # the shipped model unless named
            except AvflowError as err:
                raise SystemExit(str(err)) from None
        proc, url = start_server(model, Path(tmp) / "jobs", args.vocoder, Path(tmp) / "serve.log")
        try:
            health = httpx.get(url + "/health", timeout=30).json()
            with httpx.Client(base_url=url, timeout=120) as client:  # references, on the idle server
                run_job(client, TEXTS[0], 0, preview)  # warm-up
                refs = {i: _wav_digest(run_job(client, text, i, preview)[0]) for i, text in enumerate(TEXTS)}
            title = (f"avflow serve load — {'random tiny model' if args.tiny else model}, vocoder "
                     f"{health['models']['vocoder']}, device {health['device']}, queue {health['limits']['queue_size']}, "
                     f"preview {'on' if preview else 'off'}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")
            table = Table(title=title)
            for column in ("clients", "jobs", "ok", "lost", "mixed up", "429 retries", "p50 (s)", "p95 (s)",
                           "jobs/s", "speech s/s", "speech s/s × 1 client"):
                table.add_column(column, justify="right")
            base = None
            for n in args.clients:
                outcome = Outcome()
                per_client = max(args.requests, -(-len(TEXTS) // n))
                threads = [threading.Thread(target=client_loop, args=(url, i, per_client, preview, refs, outcome))
                           for i in range(n)]
                start = time.perf_counter()
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
                wall = time.perf_counter() - start
                lat = np.array(outcome.latencies)
                throughput, speech = len(lat) / wall, outcome.audio_s / wall
                base = base or speech
                table.add_row(str(n), str(n * per_client), str(len(lat)), str(outcome.lost), str(outcome.mixed),
                              str(outcome.retries), f"{np.percentile(lat, 50):.2f}" if len(lat) else "-",
                              f"{np.percentile(lat, 95):.2f}" if len(lat) else "-", f"{throughput:.2f}",
                              f"{speech:.2f}", f"{speech / base:.2f}")
            console.print(table)

            stream_table = Table(title="streaming (/v1/stream, exact schedule, avatar frames): first audio vs whole text")
            for column in ("clients", "first audio p50 (s)", "whole text p50 (s)", "first / whole"):
                stream_table.add_column(column, justify="right")
            text = " ".join(TEXTS[4:7])
            for n in args.clients:
                results: list[tuple[float, float, int]] = []
                lock = threading.Lock()

                def one(i: int) -> None:
                    r = stream_once(url, text, i)
                    with lock:
                        results.append(r)

                threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
                first = float(np.median([r[0] for r in results]))
                whole = float(np.median([r[1] for r in results]))
                stream_table.add_row(str(n), f"{first:.2f}", f"{whole:.2f}", f"{first / whole:.2f}")
            console.print(stream_table)
        finally:
            proc.terminate()
            proc.wait(timeout=60)


if __name__ == "__main__":
    main()
