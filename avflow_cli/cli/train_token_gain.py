"""``avflow train token-gain``: measure AV-Flow's token gain by WER and store the best
(:mod:`avflow_cli.train.token_gain`). ``cli/train.py`` adds it with ``register(app)``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from avflow_cli.console import console


def _parse_gains(text: str) -> list[float]:
    from avflow_cli.errors import AvflowError

    try:
        return [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise AvflowError(f"--gains takes numbers separated by commas, e.g. 1,1.5,2; got {text!r}") from None


def token_gain_command(
    model: Path = typer.Argument(..., help="AV-Flow model directory (a run of `avflow train avflow`, with the "
                                 "text-to-tokens model and vocoder its config names); its config.json gains "
                                 "model.token_gain."),
    gains: str = typer.Option("1,1.5,2,2.5", "--gains", help="Candidate gains, comma-separated, each in (0, 4]."),
    sentences: str = typer.Option("dev", "--sentences", help="Probe sentences to speak: dev (the ten that choose "
                                  "settings); test is the frozen final set: choosing on it spoils it."),
    samples: int = typer.Option(3, "--samples", min=1, help="Times each sentence is spoken at each gain (seeds i, "
                                "i + 1000, …): one sample's WER moves by about ±0.05 with the seed."),
    asr: Optional[list[str]] = typer.Option(None, "--asr", help="A recogniser (pocketsphinx, wav2vec2, whisper, "
                                            "whisper:DIR); repeat for more: the gain with the lowest WER averaged "
                                            "over them wins (default: pocketsphinx)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Measure and print; leave config.json as it is."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda, cuda:1 … or auto."),
    vocoder: str = typer.Option("auto", "--vocoder", help="The vocoder to listen through, as avflow synth: auto, "
                                "student, hifigan, bigvgan, griffinlim."),
    vocoder_checkpoint: Optional[Path] = typer.Option(None, "--vocoder-checkpoint", help="A student or BigVGAN "
                                                      "folder, as avflow synth (e.g. a run's fine-tuned vocoder)."),
) -> None:
    """Speak the probe sentences at each candidate token gain, transcribe them, store the best.

    A model trained on minutes of one real voice follows its tokens weakly and is heard better
    when it reads them more strongly (docs/quality.md "Token gain"); a gain of 1 is the model as
    trained, and ties go to the gain nearest 1. Only config.json changes, never the weights.
    """
    from avflow_cli.console import progress
    from avflow_cli.train.token_gain import tune_token_gain

    with progress() as bar:
        task = bar.add_task("token gain", total=None, status=str(model))

        def report(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        choice = tune_token_gain(model, gains=_parse_gains(gains), sentences=sentences, samples=samples,
                                 asr=tuple(asr or ("pocketsphinx",)), store=not dry_run, device=device,
                                 vocoder=vocoder, vocoder_checkpoint=vocoder_checkpoint, progress=report)
    names = list(choice.scores[0].wer_by_asr)
    console.print(f"{'gain':>6}  " + "  ".join(f"{n:>14}" for n in names) + f"  {'mean':>6}", highlight=False)
    for score in choice.scores:
        mark = "  ← chosen" if score.gain == choice.gain else ""
        console.print(f"{score.gain:>6g}  " + "  ".join(f"{score.wer_by_asr[n]:>14.3f}" for n in names)
                      + f"  {score.mean_wer:>6.3f}{mark}", highlight=False)
    where = "stored as model.token_gain" if choice.stored else "not stored (--dry-run)"
    console.print(f"{model}: token gain {choice.gain:g}, {where} ({len(choice.scores)} gains × {choice.samples} "
                  f"samples of the {choice.sentences} sentences)", soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add ``token-gain`` to the ``avflow train`` group."""
    app.command("token-gain", help="Measure AV-Flow's token gain by what recognisers hear on the probe sentences "
                "and store the best (model.token_gain).")(token_gain_command)
