"""``avflow train headvae|avflow``: parse options, call ``avflow_cli.train.*``. Multi-GPU: torchrun.

Example (8 GPUs): ``torchrun --nproc_per_node 8 -m avflow_cli.cli.main train avflow --data SHARDS
--out RUN --preset base --set train.bf16=true``.
"""

from __future__ import annotations

import os
from pathlib import Path

import typer

from avflow_cli.console import console

app = typer.Typer(no_args_is_help=True, help="Train the head-pose VAE, AV-Flow and text-to-tokens.")

DATA = typer.Option(..., "--data", help="Shard directory (shard-*.h5 + index.json) from `avflow prep shards`.")
OUT = typer.Option(..., "--out", help="Run directory: config.json, model.safetensors (EMA), train_state.pt, log.jsonl, tb/, samples/.")
PRESET = typer.Option("tiny", "--preset", help="tiny (CPU tests), small (the CPU demo model), base (the paper), release (the authors' code).")
STEPS = typer.Option(None, "--steps", help="Total optimiser steps (overrides the preset's train.steps).")
SET_HELP = "Override one setting, repeatable: --set model.d_model=256 --set train.lr=2e-4 (bare names work when unambiguous)."
CONFIG = typer.Option(None, "--config", help="TOML or YAML file with model and train tables (keys as in --set), or the name of a "
                      "shipped one: dyadic (participant guidance), release_dyadic (the authors' dyadic model). --set wins over it.")
RESUME = typer.Option(False, "--resume", help="Continue the run in --out from its last checkpoint (same loss curve as an uninterrupted run).")
DEVICE = typer.Option("auto", "--device", help="auto (cuda if present), cpu, cuda or cuda:N. Under torchrun each rank takes its local GPU.")


def _overrides(sets: list[str] | None, steps: int | None) -> dict[str, str]:
    from avflow_cli.checks import check_at_least
    from avflow_cli.models.config import parse_set_options

    check_at_least(steps, "--steps")
    out = parse_set_options(sets)
    if steps is not None:
        out["train.steps"] = str(steps)
    return out


def _check_inputs(data: Path, out: Path, resume: bool) -> None:
    """Before anything is created: the run to resume exists, and every shard opens and is whole."""
    from avflow_cli.data.verify import check_shards_readable
    from avflow_cli.errors import AvflowError
    from avflow_cli.train.common import STATE_NAME, RunDir

    if resume and not RunDir(out).has_checkpoint():
        raise AvflowError(f"{out}: nothing to resume (no {STATE_NAME} there); drop --resume to start a new run")
    check_shards_readable(data)


def _report(summary: dict, out: Path) -> None:
    if int(os.environ.get("RANK", "0")) == 0:
        val = ", ".join(f"{k} {v:.4f}" for k, v in summary.get("val", {}).items())
        console.print(f"step {summary['step']}: train loss {summary['last_loss']:.4f}"
                      + (f"; validation {val}" if val else "") + f"; model in {out}")


@app.command("headvae")
def headvae(
    data: Path = DATA, out: Path = OUT, preset: str = PRESET, steps: int = STEPS, set_: list[str] = typer.Option(None, "--set", help=SET_HELP),
    config: Path = CONFIG, resume: bool = RESUME, device: str = DEVICE,
) -> None:
    """Train the head-pose VAE (7-d pose ↔ 8-d latent) on the shards' head_pose stream."""
    from avflow_cli.train.common import cleanup_distributed
    from avflow_cli.train.headvae import train_headvae

    overrides = _overrides(set_, steps)
    _check_inputs(data, out, resume)
    try:
        summary = train_headvae(data, out, preset=preset, config_file=config, overrides=overrides,
                                resume=resume, device=device)
    finally:
        cleanup_distributed()
    _report(summary, out)


@app.command("avflow")
def avflow(
    data: Path = DATA, out: Path = OUT, preset: str = PRESET, steps: int = STEPS, set_: list[str] = typer.Option(None, "--set", help=SET_HELP),
    config: Path = CONFIG, resume: bool = RESUME, device: str = DEVICE,
    head_vae: Path = typer.Option(None, "--head-vae", help="Head-VAE model directory to reference for synthesis "
                                  "(default: the one recorded by `avflow prep encode-head`)."),
    init: str = typer.Option(None, "--init", help="Fine-tune: start from this trained AV-Flow model's weights (a model "
                             "directory or a shipped name, e.g. pretrained) instead of random ones. Its architecture "
                             "replaces the preset's; the shards must hold its kind of tokens; normalisation comes from "
                             "the shards. A new run only (--resume continues from the run's checkpoint).",
                             show_default=False),
) -> None:
    """Train AV-Flow (OT-CFM) on the shards: ASR tokens in; mel, face codes and head latents out.

    --init fine-tunes a trained model (same architecture and token kind) instead of starting from random weights.
    """
    from avflow_cli.errors import AvflowError
    from avflow_cli.train.avflow import train_avflow
    from avflow_cli.train.common import cleanup_distributed

    overrides = _overrides(set_, steps)
    if init:
        if resume:
            raise AvflowError("--init starts a new run from a model's weights; --resume continues a run from its "
                              "checkpoint: drop --init")
        overrides["train.init"] = init
    _check_inputs(data, out, resume)
    try:
        summary = train_avflow(data, out, preset=preset, config_file=config, overrides=overrides,
                               resume=resume, device=device, head_vae=head_vae)
    finally:
        cleanup_distributed()
    _report(summary, out)


def _register_t2t() -> None:
    """`avflow train t2t` lives with the text-to-tokens part (avflow_cli.cli.train_t2t)."""
    from avflow_cli.cli import train_t2t

    train_t2t.register(app)


def _register_vocoder() -> None:
    """`avflow train vocoder` lives with the student vocoder (avflow_cli.cli.train_vocoder)."""
    from avflow_cli.cli import train_vocoder

    train_vocoder.register(app)


def _register_token_gain() -> None:
    """`avflow train token-gain` lives with its measurement (avflow_cli.cli.train_token_gain)."""
    from avflow_cli.cli import train_token_gain

    train_token_gain.register(app)


_register_t2t()
_register_vocoder()
_register_token_gain()
