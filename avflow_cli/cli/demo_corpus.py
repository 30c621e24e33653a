"""``avflow demo corpus``: option parsing over :func:`avflow_cli.data.demo_corpus.generate_corpus`."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    """Add `demo corpus` to the demo group."""

    @app.command(
        "corpus",
        help=(
            "Generate the built-in dyadic demo corpus from real speech synthesis (flite), deterministically for a "
            "seed.\n\n"
            "Two speakers (actor: flite voice slt; participant: rms or awb) take turns with pauses and "
            "back-channels, recorded as 2-channel 48 kHz audio with cross-talk and noise. The actor's avatar face "
            "codes and head pose follow the exact phone timing; the participant gets SMIRK features and a rendered "
            "video. The folder is written atomically (a temporary folder renamed at the end)."
        ),
    )
    def corpus(
        out: Path = typer.Option(..., "--out", "-o", help="Folder to create: one sub-folder per session, plus "
                                 "corpus.json, face_decoder.npz and ljspeech/ (actor sentences for text-to-tokens)."),
        minutes: float = typer.Option(1.0, "--minutes", "-m", help="Total length of the recordings in minutes "
                                      "(about 10 s of generation per minute on one core)."),
        seed: int = typer.Option(0, "--seed", "-s", help="Random seed: the same seed gives the same corpus."),
        session_seconds: float = typer.Option(60.0, help="Length of each session (conversation); a shorter "
                                              "remainder below 8 s joins the last session."),
        size: int = typer.Option(192, help="Side in pixels of the rendered participant video (participant.mp4)."),
        overwrite: bool = typer.Option(False, "--overwrite", help="Replace whatever is at --out. Without it, an "
                                       "identical finished corpus is kept (skipped) and anything else is refused."),
    ) -> None:
        """Run the generator and print a one-line summary."""
        from avflow_cli.console import console
        from avflow_cli.data.demo_corpus import generate_corpus

        summary = generate_corpus(out, minutes=minutes, seed=seed, session_seconds=session_seconds, size=size,
                                  overwrite=overwrite)
        if summary["skipped"]:
            console.print(f"[green]{out}[/] already holds this corpus (seed {seed}, {minutes:g} min): nothing to do.")
            return
        console.print(
            f"[green]wrote[/] {out}: {len(summary['sessions'])} session(s), {summary['total_seconds']:.1f} s of "
            f"dialogue, {summary['ljspeech_items']} actor sentences in ljspeech/ "
            f"({summary['elapsed_s']:.1f} s, {summary['seconds_per_minute']:.1f} s per corpus minute)"
        )
