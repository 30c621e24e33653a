"""``avflow serve``: a web page and an HTTP/WebSocket API over one loaded model (thin over avflow_cli.serve)."""

from __future__ import annotations

import errno
import socket
from pathlib import Path
from typing import Optional

import typer

from avflow_cli.cli.synth import VocoderChoice
from avflow_cli.console import err_console
from avflow_cli.cli.model_option import model_option
from avflow_cli.errors import AvflowError
from avflow_cli.serve.settings import MiB, default_jobs_dir

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _check_port(host: str, port: int) -> None:
    """Fail with one line (before the models load) when the address cannot be bound."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as err:
            if err.errno == errno.EADDRINUSE:
                raise AvflowError(f"{host}:{port} is already in use; choose another --port") from None
            raise AvflowError(f"cannot listen on {host}:{port} ({err.strerror})") from None


def serve_command(
    model: Optional[str] = model_option(),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on. The default serves this machine only; "
                             "0.0.0.0 serves everyone who can reach it (there is no authentication)."),
    port: int = typer.Option(8000, "--port", "-p", min=0, max=65535, help="TCP port (0 = any free port, printed at start)."),
    device: str = typer.Option("auto", "--device", help="cpu, cuda, cuda:1 … or auto. One generation runs at a time on it."),
    t2t: Optional[Path] = typer.Option(None, "--t2t", help="Text-to-tokens model directory (default: recorded in the model's config, or ../t2t)."),
    head_vae: Optional[Path] = typer.Option(None, "--head-vae", help="Head-pose VAE directory (default: recorded in the model's config, or ../headvae)."),
    vocoder: VocoderChoice = typer.Option(VocoderChoice.auto, "--vocoder", help="As for `avflow synth`."),
    vocoder_checkpoint: Optional[Path] = typer.Option(None, "--vocoder-checkpoint", help="BigVGAN folder (config.json + bigvgan_generator.pt)."),
    jobs: Optional[Path] = typer.Option(None, "--jobs", help="Folder of job results (default: ~/.cache/avflow/serve/jobs). "
                                        "Unfinished jobs of a server that died are reported as failed on the next start."),
    queue: int = typer.Option(8, "--queue", min=1, help="Requests that may wait for the model; more get HTTP 429."),
    max_text: int = typer.Option(1000, "--max-text", min=1, help="Longest text (characters) one request may send."),
    max_steps: int = typer.Option(64, "--max-steps", min=1, help="Most Euler steps one request may ask for."),
    allow_host: Optional[list[str]] = typer.Option(None, "--allow-host", help="A further host name (or address) that "
                                                   "requests may name in their Host header, e.g. the machine's DNS name "
                                                   "when serving beyond localhost; repeat for several. Others get 400 "
                                                   "(DNS rebinding guard, docs/serve.md)."),
    max_body_mb: float = typer.Option(1.0, "--max-body-mb", min=0.001, help="Largest JSON request body (and WebSocket "
                                      "message), MiB."),
    max_upload_mb: float = typer.Option(25.0, "--max-upload-mb", min=0.01, help="Largest listening-mode upload (audio + video), MiB."),
    max_upload_seconds: float = typer.Option(120.0, "--max-upload-seconds", min=0.1, help="Longest participant audio/video, seconds."),
    job_ttl: float = typer.Option(3600.0, "--job-ttl", min=1.0, help="Seconds a finished job's files are kept."),
    no_preview: bool = typer.Option(False, "--no-preview", help="Skip preview.mp4 (jobs finish sooner; the page then "
                                    "needs streaming mode to show the avatar)."),
    log_level: str = typer.Option("info", "--log-level", help="uvicorn log level: critical, error, warning, info, debug."),
) -> None:
    """Serve the avatar: a web page and a JSON/WebSocket API over one loaded model.

    Example: avflow serve  → open http://127.0.0.1:8000/ (the shipped model; --model DIR serves another)

    API: POST /v1/synthesize, GET /v1/jobs/{id}, GET /v1/jobs/{id}/files/{name}, POST /v1/listen,
    GET /health, WebSocket /v1/stream; the OpenAPI document is at /openapi.json.
    """
    import uvicorn

    from avflow_cli.serve.app import create_app
    from avflow_cli.serve.engine import ModelService
    from avflow_cli.serve.server import SignalledServer
    from avflow_cli.serve.settings import ServeSettings

    if host not in LOOPBACK:
        err_console.print(f"[yellow]warning:[/] listening on {host}: anyone who can reach this address can use the "
                          "model (no authentication); requests must name it, localhost, an IP address or an "
                          "--allow-host name", highlight=False)
    _check_port(host, port)
    settings = ServeSettings(
        jobs_dir=(jobs or default_jobs_dir()).expanduser(), queue_size=queue, max_text_chars=max_text, max_steps=max_steps,
        max_upload_bytes=int(max_upload_mb * MiB), max_body_bytes=max(1, int(max_body_mb * MiB)),
        max_upload_seconds=max_upload_seconds, job_ttl_s=job_ttl, janitor_interval_s=min(30.0, max(1.0, job_ttl / 4)),
        preview=not no_preview, host=host, allowed_hosts=tuple(allow_host or ()),
    )
    with err_console.status("loading models…"):
        service = ModelService.load(model, t2t=t2t, head_vae=head_vae, vocoder=vocoder.value,
                                    vocoder_checkpoint=vocoder_checkpoint, device=device)
    app = create_app(service, settings)
    state = app.state.avflow
    info = service.info()
    err_console.print(f"models: avflow={info['models']['avflow']} ({service.synth.choice.origin()})  vocoder={info['models']['vocoder']}  "
                      f"device={info['device']}  avatar={info['avatar']}  jobs={settings.jobs_dir}", highlight=False)
    recovered = state.store.recovered
    if recovered["interrupted"] or recovered["removed"]:
        err_console.print(f"jobs folder: {recovered['interrupted']} unfinished job(s) of an earlier server marked failed, "
                          f"{recovered['removed']} expired or unreadable removed, {recovered['kept']} kept", highlight=False)
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level.lower(), ws_max_size=settings.max_body_bytes,
                            timeout_graceful_shutdown=10)
    server = SignalledServer(config)
    server.run()
    if server.stop_signal is not None:  # stopped by Ctrl-C or SIGTERM: the shell's 128 + signal, every time
        raise typer.Exit(128 + server.stop_signal)


def register(app: typer.Typer) -> None:
    """Add `avflow serve` to the root app."""
    app.command("serve")(serve_command)  # the docstring is the help: its first line is the summary
