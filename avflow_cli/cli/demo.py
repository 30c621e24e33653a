"""``avflow demo``: the built-in demo. ``demo corpus`` generates data; ``demo`` alone runs everything."""

from __future__ import annotations

from pathlib import Path

import typer

from avflow_cli.cli import demo_corpus
from avflow_cli.demo import DemoSettings

_DEFAULTS = DemoSettings()

app = typer.Typer(invoke_without_command=True)
demo_corpus.register(app)  # `avflow demo corpus`


@app.callback()
def demo(
    ctx: typer.Context,
    out: Path = typer.Option(Path("demo_out"), "--out", "-o", help="Folder for the corpus, shards, models and synthesis."),
    minutes: float = typer.Option(_DEFAULTS.minutes, "--minutes", help="Minutes of demo dialogue to generate."),
    seed: int = typer.Option(_DEFAULTS.seed, "--seed", help="Seed of the corpus."),
    avflow_steps: int = typer.Option(_DEFAULTS.avflow_steps, "--avflow-steps", help="AV-Flow training steps (tiny preset)."),
    t2t_steps: int = typer.Option(_DEFAULTS.t2t_steps, "--t2t-steps", help="Text-to-tokens training steps (tiny preset)."),
    headvae_steps: int = typer.Option(_DEFAULTS.headvae_steps, "--headvae-steps", help="Head-pose VAE training steps (tiny preset)."),
    text: str = typer.Option(_DEFAULTS.text, "--text",
                             help="What the demo avatar says at the end."),
) -> None:
    """Run the whole lifecycle on built-in demo data (CPU, minutes): corpus → prep → train → synth.

    Re-running reuses finished stages. `avflow demo corpus` only generates the corpus.
    """
    if ctx.invoked_subcommand is not None:
        return
    from avflow_cli.console import console
    from avflow_cli.demo import run_demo

    settings = DemoSettings(minutes=minutes, seed=seed, headvae_steps=headvae_steps, t2t_steps=t2t_steps,
                            avflow_steps=avflow_steps, text=text)
    paths = run_demo(out, settings)
    console.rule("demo finished")
    for name in ("speech.wav", "motion.npz", "preview.mp4", "meta.json"):
        path = paths.synth / name
        if path.exists():
            console.print(f"{name:12s} {path}", highlight=False)
    console.print(f"models       {paths.models}\nshards       {paths.shards}\n"
                  f"try: avflow synth \"Your own sentence.\" -o out/ --model {paths.models / 'avflow'}", highlight=False)
