"""The live, always-on avatar: ``LiveSession`` (participant audio and camera in, ``say`` at any
moment, avatar audio and motion out on one clock). docs/live.md explains it; ``avflow live`` runs it
on recordings; the WebSocket endpoint of ``avflow serve`` runs it on a browser's microphone.

Beyond the contract (all additions): ``LiveSession(..., lead=, vocoder_context=, token_delay=,
face_rate=, steps=, token_extractor=)``, ``now()``, ``busy``, ``next_free_frame``, ``push_features``,
``close(now=None)``, ``render(output, size=256, fps=30.0)``; ``LiveOutput.frames``, ``.mel``,
``.head_latent``; every event also carries its ``frame``; ``LiveStats`` adds ``first_audio_heard``,
``t2t_s``, ``cpu_real_time_factor``, ``fps["render_capacity_cpu"]`` and the settings it ran with."""

from avflow_cli.live.session import LiveOutput, LiveSession
from avflow_cli.live.stats import LiveStats

__all__ = ["LiveOutput", "LiveSession", "LiveStats"]
