"""``avflow demo``: the built-in demo. ``demo corpus`` generates data; ``demo`` alone runs everything."""

from __future__ import annotations

import typer

from avflow_cli.cli import demo_corpus

app = typer.Typer(no_args_is_help=True)
demo_corpus.register(app)  # `avflow demo corpus`
