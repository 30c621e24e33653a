"""``avflow demo corpus``: option parsing over :func:`avflow_cli.data.demo_corpus.generate_corpus`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

HELP = (
    "Generate the built-in dyadic demo corpus from real speech synthesis (flite), deterministically "
    "for a seed.\n\n"
    "Two speakers (actor: flite voice slt; participant: rms or awb) take turns with pauses and "
    "back-channels, recorded as 2-channel 48 kHz audio with cross-talk and noise. The actor's avatar "
    "face codes and head pose follow the exact phone timing; the participant gets SMIRK features and "
    "a rendered video. The folder is written atomically (a temporary folder renamed at the end)."
)
OUT_HELP = (
    "Folder to create: one sub-folder per session, plus corpus.json, face_decoder.npz and ljspeech/ "
    "(the actor's sentences for text-to-tokens training)."
)
MINUTES_HELP = "Total length of the recordings in minutes (a few CPU seconds of generation per minute)."
SEED_HELP = "Random seed: the same seed gives the same corpus."
SESSION_HELP = "Length of each session (conversation) in seconds; a remainder under 8 s joins the last one."
SIZE_HELP = "Side in pixels of the rendered participant video (participant.mp4)."
ACTOR_SPEECH_HELP = (
    "Real recordings for the actor instead of flite: an LJSpeech-layout folder with alignments/ID.json "
    "phone timing (`avflow prep import asterisk` writes one). The face and head follow their forced-aligned "
    "phones; the participant stays flite."
)
FORCE_HELP = (
    "Replace whatever is at --out. Without it, an identical finished corpus is kept (skipped) and "
    "anything else there is refused."
)


def corpus(
    out: Path = typer.Option(..., "--out", "-o", help=OUT_HELP),
    minutes: float = typer.Option(1.0, "--minutes", help=MINUTES_HELP),
    seed: int = typer.Option(0, "--seed", "-s", help=SEED_HELP),
    session_seconds: float = typer.Option(60.0, help=SESSION_HELP),
    size: int = typer.Option(192, help=SIZE_HELP),
    force: bool = typer.Option(False, "--force", help=FORCE_HELP),
    actor_speech: Optional[Path] = typer.Option(None, "--actor-speech", help=ACTOR_SPEECH_HELP),
    overwrite: Optional[bool] = typer.Option(None, "--overwrite", hidden=True, help="Deprecated name of --force."),
    minutes_short: Optional[float] = typer.Option(None, "-m", hidden=True,
                                                  help="Deprecated: -m means --model everywhere else; use --minutes."),
) -> None:
    """Run the generator and print a one-line summary."""
    from avflow_cli.cli.aliases import renamed
    from avflow_cli.console import console
    from avflow_cli.data.demo_corpus import generate_corpus

    force = renamed("--overwrite", overwrite, "--force", force)
    minutes = renamed("-m", minutes_short, "--minutes", minutes)
    summary = generate_corpus(out, minutes=minutes, seed=seed, session_seconds=session_seconds, size=size, force=force,
                              actor_speech=actor_speech)
    if summary["skipped"]:
        console.print(f"[green]{out}[/] already holds this corpus (seed {seed}, {minutes:g} min): "
                      "nothing to do.")
        return
    console.print(
        f"[green]wrote[/] {out}: {len(summary['sessions'])} session(s), "
        f"{summary['total_seconds']:.1f} s of dialogue, {summary['ljspeech_items']} actor sentences in "
        "ljspeech/ "
        f"({summary['elapsed_s']:.1f} s, {summary['seconds_per_minute']:.1f} s per corpus minute)"
    )


def register(app: typer.Typer) -> None:
    """Add `demo corpus` to the demo group."""
    app.command("corpus", help=HELP)(corpus)
