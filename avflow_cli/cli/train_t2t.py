"""``avflow train t2t``: parse options and call :func:`avflow_cli.train.t2t.train_t2t`.

``cli/train.py`` adds this command to its group with ``train_t2t.register(app)``.
"""

from __future__ import annotations

from pathlib import Path

import typer

from avflow_cli.console import console


def t2t_command(
    data: Path = typer.Option(
        ..., "--data", help="LJSpeech-layout folder: metadata.csv (id|text|normalised), wavs/, tokens/ID.npy "
        "(50 Hz logits from `avflow prep tokens`). The demo corpus exports one at CORPUS/ljspeech/."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Run directory; it is also the model directory synth loads."),
    preset: str = typer.Option("tiny", "--preset", help="tiny (CPU minutes), base (release sizes, data statistics) "
                               "or release (the authors' sizes and output normalisation)."),
    steps: int | None = typer.Option(None, "--steps", help="Total optimiser steps (default: the preset's)."),
    batch_size: int | None = typer.Option(None, "--batch-size", help="Utterances per step (default: the preset's)."),
    config: Path | None = typer.Option(None, "--config", help="TOML/YAML file {model: {...}, train: {...}} of overrides, or the name of a shipped one (avflow_cli/configs)."),
    set_: list[str] | None = typer.Option(None, "--set", help="Override one field, e.g. --set train.lr=2e-4 "
                                          "--set model.n_layers=4 (repeatable; wins over --config)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out from its last checkpoint."),
    device: str = typer.Option("auto", "--device", help="auto (CUDA if present), cpu, cuda or cuda:N."),
    calibrate_durations: bool = typer.Option(
        True, "--calibrate-durations/--no-calibrate-durations",
        help="At the end, measure how many frames the model gives its training utterances against their true "
        "length and store the factor that corrects it (model.duration_scale): a regressed log-duration makes "
        "speech about 15 % too fast otherwise. A finished run resumed at its step count only calibrates.",
    ),
) -> None:
    """Train text-to-tokens (text → 29-d ASR token logits at 86.13 Hz) from an LJSpeech-layout folder."""
    from avflow_cli.checks import check_at_least
    from avflow_cli.errors import AvflowError
    from avflow_cli.models.config import parse_set_options
    from avflow_cli.train.common import STATE_NAME, RunDir
    from avflow_cli.train.t2t import train_t2t

    for name, value in (("--steps", steps), ("--batch-size", batch_size)):
        check_at_least(value, name)
    if resume and not RunDir(out).has_checkpoint():
        raise AvflowError(f"{out}: nothing to resume (no {STATE_NAME} there); drop --resume to start a new run")
    overrides: dict[str, object] = dict(parse_set_options(set_))
    if steps is not None:
        overrides["train.steps"] = steps
    if batch_size is not None:
        overrides["train.batch_size"] = batch_size
    summary = train_t2t(data, out, preset=preset, config_file=config, overrides=overrides, resume=resume, device=device,
                        calibrate_durations=calibrate_durations)
    val = summary.get("val") or {}
    val_text = f", val loss {val['loss']:.4f}" if "loss" in val else ""
    console.print(
        f"trained text-to-tokens to step {summary['step']} in {summary['seconds']:.0f} s "
        f"(last train loss {summary['last_loss']:.4f}{val_text}); model directory: {out}",
        soft_wrap=True,
    )
    if "calibration" in summary:
        cal = summary["calibration"]
        console.print(f"durations calibrated on {cal.utterances} training utterances: the model gave "
                      f"{cal.ratio_before:.3f} of their frames, model.duration_scale = {cal.scale:g}", soft_wrap=True)
    elif "calibration_error" in summary:
        console.print(f"[yellow]durations not calibrated:[/] {summary['calibration_error']}", soft_wrap=True)


def calibrate_command(
    model: Path = typer.Argument(..., help="Text-to-tokens model directory (a run of `avflow train t2t`); its "
                                 "config.json gains model.duration_scale."),
    data: Path = typer.Option(..., "--data", help="The LJSpeech-layout folder it was trained on, with tokens/: "
                              "only utterances whose text the model trained on (its text_ids.json) are measured."),
) -> None:
    """Measure and store a trained text-to-tokens model's pace (what training now does at its end).

    Its duration predictor regresses log-durations, whose exponential is shorter than the true
    durations: models trained before calibration speak about 15 % too fast (docs/quality.md).
    """
    from avflow_cli.train.t2t_calibrate import calibrate_model_dir

    cal = calibrate_model_dir(model, data)
    console.print(f"{model}: on {cal.utterances} training utterances the model gave {cal.ratio_before:.3f} of their "
                  f"frames; model.duration_scale = {cal.scale:g} ({cal.ratio_after:.3f} with it)", soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add ``t2t`` and ``calibrate-t2t`` to the ``avflow train`` group."""
    app.command("t2t", help="Train text-to-tokens (text → ASR tokens at 86.13 Hz) from an LJSpeech-layout folder.")(
        t2t_command
    )
    app.command("calibrate-t2t", help="Measure a trained text-to-tokens model's pace on its training folder and "
                "store the correction (model.duration_scale).")(calibrate_command)
