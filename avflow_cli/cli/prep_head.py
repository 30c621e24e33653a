"""``avflow prep encode-head``: write head-pose VAE latents into the shards (library: data.head_latents).

The orchestration of the seam between ``data/`` and ``models/``: the VAE is loaded here, through the
model registry, and handed to ``data/`` as a :class:`~avflow_cli.data.head_latents.HeadEncoder`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from avflow_cli.cli.aliases import renamed
from avflow_cli.console import console


def encode_head(
    data: Optional[Path] = typer.Option(None, "--data", help="Shard directory (shard-*.h5 + index.json), as "
                                        "`avflow train … --data` reads it. Required."),
    shards: Optional[Path] = typer.Argument(None, hidden=True, help="Deprecated: the shard directory as a "
                                            "positional argument; use --data."),
    head_vae: Optional[Path] = typer.Option(None, "--head-vae", help="Head-VAE model directory (the run of `avflow train headvae`, or an imported release VAE). Required."),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda."),
    force: bool = typer.Option(False, "--force", help="Re-encode shards already encoded by this VAE."),
    vae: Optional[Path] = typer.Option(None, "--vae", hidden=True, help="Deprecated name of --head-vae."),
) -> None:
    """Encode each clip's head_pose (T, 7) into head latents (T, 8), atomically per shard; record the VAE in index.json."""
    from avflow_cli.data.head_latents import HeadEncoder, encode_head_into_shards
    from avflow_cli.data.schema import ShardIndex
    from avflow_cli.errors import AvflowError
    from avflow_cli.models.registry import load_head_vae

    head_vae = renamed("--vae", vae, "--head-vae", head_vae)
    shards = renamed("a positional SHARDS", shards, "--data SHARDS", data)
    if shards is None:
        raise AvflowError("give the shard directory to encode: --data SHARDS")
    if head_vae is None:
        raise AvflowError("give the head-pose VAE to encode with: --head-vae DIR")
    ShardIndex.load(shards)  # a wrong shard folder is reported before the model is loaded
    encoder = HeadEncoder.of_vae(load_head_vae(head_vae, device), head_vae)
    counts = encode_head_into_shards(shards, encoder, force=force)
    console.print(f"head latents: {counts['encoded']} shards encoded, {counts['skipped']} already up to date ({shards})")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the `prep` group."""
    app.command("encode-head")(encode_head)
