"""``avflow demo``: the built-in demo. ``demo corpus`` generates data; ``demo`` alone runs everything."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

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
    budget: str = typer.Option("quick", "--budget", help="quick: the whole lifecycle in about ten CPU minutes "
                               "(a 12-minute corpus, tiny models; the speech is not yet intelligible). full: the "
                               "recipe of the demo model measured in docs/quality.md (30-minute corpus, small AV-Flow "
                               "for 8000 steps: CPU hours). Options below override single values."),
    minutes: Optional[float] = typer.Option(None, "--minutes", help="Minutes of demo dialogue to generate."),
    seed: int = typer.Option(_DEFAULTS.seed, "--seed", help="Seed of the corpus."),
    avflow_steps: Optional[int] = typer.Option(None, "--avflow-steps", min=1, help="AV-Flow training steps."),
    t2t_steps: Optional[int] = typer.Option(None, "--t2t-steps", min=1, help="Text-to-tokens training steps (tiny preset)."),
    headvae_steps: Optional[int] = typer.Option(None, "--headvae-steps", min=1, help="Head-pose VAE training steps (tiny preset)."),
    text: str = typer.Option(_DEFAULTS.text, "--text",
                             help="What the demo avatar says at the end."),
    device: str = typer.Option(_DEFAULTS.device, "--device", help="cpu (default), cuda, cuda:N or auto: where the "
                               "models train and synthesize (--budget full is meant for a GPU; it has not been timed on one yet)."),
) -> None:
    """Run the whole lifecycle on built-in demo data (CPU): corpus → prep → train → synth.

    Re-running reuses finished stages. `avflow demo corpus` only generates the corpus.
    """
    if ctx.invoked_subcommand is not None:
        return
    from dataclasses import replace

    from avflow_cli.console import console
    from avflow_cli.demo import BUDGETS, run_demo
    from avflow_cli.errors import AvflowError

    if budget not in BUDGETS:
        raise AvflowError(f"--budget must be one of {', '.join(BUDGETS)}, got {budget!r}")
    chosen = {"minutes": minutes, "avflow_steps": avflow_steps, "t2t_steps": t2t_steps, "headvae_steps": headvae_steps}
    settings = replace(BUDGETS[budget], seed=seed, text=text, device=device, **{k: v for k, v in chosen.items() if v is not None})
    if settings.minutes <= 0:
        raise AvflowError(f"--minutes must be positive, got {settings.minutes}")
    paths = run_demo(out, settings)
    console.rule("demo finished")
    for name in ("speech.wav", "motion.npz", "preview.mp4", "meta.json"):
        path = paths.synth / name
        if path.exists():
            console.print(f"{name:12s} {path}", highlight=False)
    console.print(f"models       {paths.models}\nshards       {paths.shards}\n"
                  f"try: avflow synth \"Your own sentence.\" -o out/ --model {paths.models / 'avflow'}", highlight=False)
