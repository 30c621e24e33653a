"""``avflow prep …``: the data-preparation stages. Commands live in the modules registered here."""

from __future__ import annotations

import typer

from avflow_cli.cli import prep_frontends, prep_head, prep_stages

app = typer.Typer(no_args_is_help=True)
prep_stages.register(app)  # vad, mel, tokens, headpose, shards, index, all
prep_frontends.register(app)  # smirk and `prep import …` (a2p, avflow50h, ljspeech, video)
prep_head.register(app)  # encode-head (head-pose VAE latents into shards)
