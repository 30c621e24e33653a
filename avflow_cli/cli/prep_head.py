"""``avflow prep encode-head``: write head-pose VAE latents into the shards (library: data.head_latents)."""

from __future__ import annotations

from pathlib import Path

import typer

from avflow_cli.console import console


def encode_head(
    shards: Path = typer.Argument(..., help="Shard directory (shard-*.h5 + index.json)."),
    vae: Path = typer.Option(..., "--vae", help="Head-VAE model directory (the run of `avflow train headvae`, or an imported release VAE)."),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda."),
    force: bool = typer.Option(False, "--force", help="Re-encode shards already encoded by this VAE."),
) -> None:
    """Encode each clip's head_pose (T, 7) into head latents (T, 8), atomically per shard; record the VAE in index.json."""
    from avflow_cli.data.head_latents import encode_head_into_shards

    counts = encode_head_into_shards(shards, vae, device, force=force)
    console.print(f"head latents: {counts['encoded']} shards encoded, {counts['skipped']} already up to date ({shards})")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the `prep` group."""
    app.command("encode-head")(encode_head)
