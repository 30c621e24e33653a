"""The live, always-on avatar: ``LiveSession`` (participant audio and camera in, ``say`` at any
moment, avatar audio and motion out on one clock). docs/live.md explains it; ``avflow live`` runs it
on recordings; the WebSocket endpoint of ``avflow serve`` runs it on a browser's microphone."""

from avflow_cli.live.session import LiveOutput, LiveSession
from avflow_cli.live.stats import LiveStats

__all__ = ["LiveOutput", "LiveSession", "LiveStats"]
