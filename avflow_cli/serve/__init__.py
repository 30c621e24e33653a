"""``avflow serve``: one process holds the models and serves a web page and a JSON/WebSocket API.

Layers, each in its own module:

- :mod:`.settings` — the limits a server runs under (queue, text, uploads, job lifetime);
- :mod:`.jobs` — job folders on disk: states, results, expiry, recovery after a crash;
- :mod:`.worker` — one generation at a time per device: a worker thread and a bounded queue;
- :mod:`.engine` — the only place that calls :class:`avflow_cli.synth.Synthesizer`;
- :mod:`.protocol` — the WebSocket chunk format (JSON header + binary float32 payload);
- :mod:`.uploads` — request-size limits and upload checks (the same checks as CLI input);
- :mod:`.live_protocol` / :mod:`.live` — ``WS /v1/live``: the live avatar's versioned protocol and
  the connection that runs :class:`avflow_cli.live.LiveSession` on its clock;
- :mod:`.app` — the FastAPI routes; ``static/`` — the page (plain HTML/JS, no build step).
"""

from __future__ import annotations

from avflow_cli.serve.settings import ServeSettings

__all__ = ["ServeSettings"]
