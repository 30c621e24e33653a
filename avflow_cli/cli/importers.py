"""``avflow import release DIR -o MODELS``: the authors' released files → avflow model directories."""

from __future__ import annotations

from pathlib import Path

import typer

from avflow_cli.console import console

app = typer.Typer(no_args_is_help=True)


@app.command("release")
def release(
    src: Path = typer.Argument(..., help="The authors' download folder (holding 50h_dataset/, bigvgan_base_22khz_80band/, text_to_tokens.pth)."),
    out: Path = typer.Option(Path("models"), "-o", "--out", help="Where MODELS/avflow, headvae, t2t and vocoder are written."),
    finetuned_vocoder: bool = typer.Option(False, help="Use 50h_dataset/bigvgan_base_22khz_80band_finetuned instead of the base BigVGAN."),
    verify: bool = typer.Option(True, help="Load every written directory back with synth's loaders."),
    force: bool = typer.Option(False, help="Convert again even when MODELS already holds a finished import."),
) -> None:
    """Convert av_flow_ckpt_50h.pt, the head VAE (+ its pose statistics), BigVGAN and text_to_tokens.pth."""
    from avflow_cli.release_import import import_release

    result = import_release(src, out, finetuned_vocoder=finetuned_vocoder, force=force, verify=verify)
    state = "already imported, kept" if result["skipped"] else "written"
    for part, path in result["parts"].items():
        detail = result["verified"].get(part, "")
        console.print(f"{part:8s} → {path} ({state}{'; ' + detail if detail else ''})")
    for note in result["notes"]:
        console.print(f"[yellow]note:[/] {note}")
    console.print(f'next: avflow synth "Hello there." --model {result["parts"]["avflow"]}')
