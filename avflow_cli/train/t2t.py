"""``avflow train t2t``: text-to-tokens from an LJSpeech-layout folder (ours; the release has no trainer).

Loss per batch = duration loss (predicted vs MAS log-durations) + prior loss (frames under
the aligned encoder means) + CFM loss (decoder velocity), as in Matcha-TTS. The run directory,
EMA, atomic checkpoints, exact resume, TensorBoard and progress come from ``train.common``;
the run directory is itself a t2t model directory (``load_t2t(run_dir)``).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from avflow_cli.constants import FPS
from avflow_cli.data.token_source import compatible, read_ljspeech_source
from avflow_cli.errors import AvflowError
from avflow_cli.models.config import TrainConfig
from avflow_cli.models.text2tokens.config import T2TConfig
from avflow_cli.models.text2tokens.config import preset as t2t_preset
from avflow_cli.data.t2t_dataset import (
    T2TBatches,
    Utterance,
    collate_utterances,
    load_tokens_fps,
    load_utterances,
    split_utterances,
    token_statistics,
)
from avflow_cli.models.text2tokens.io import KIND, normalization_of
from avflow_cli.models.text2tokens.model import TextToTokens
from avflow_cli.train.common import IDS_CACHE, Dist, RunDir, TrainTask, run_configs, run_training, setup_distributed
from avflow_cli.train.t2t_calibrate import calibrate_model_dir, duration_ratio

VAL_SEED = 1234

# Training schedules per preset (the model side lives in models/text2tokens/config.py).
# segment_frames: the decoder's flow-matching loss uses random crops this long (0 = whole
# utterances); durations and the prior always see whole utterances.
PRESET_TRAIN: dict[str, dict[str, Any]] = {
    "tiny": dict(steps=1500, batch_size=8, segment_frames=0, lr=1e-3, warmup_steps=50, ema_decay=0.99, log_every=10, val_every=250,
                 val_windows=8, sample_every=500, ckpt_every=250),
    "base": dict(steps=300_000, batch_size=32, segment_frames=344, warmup_steps=1000, ema_decay=0.999, val_every=2000, ckpt_every=2000,
                 sample_every=10_000),
    "release": dict(steps=300_000, batch_size=32, segment_frames=344, warmup_steps=1000, ema_decay=0.999, val_every=2000, ckpt_every=2000,
                    sample_every=10_000),
}


def t2t_configs(
    out: str | Path, preset: str, config_file: str | Path | None, overrides: dict[str, Any] | None, resume: bool
) -> tuple[T2TConfig, TrainConfig, str, bool]:
    """Preset (or the run's saved config when resuming) + file + ``--set``, through the shared
    :func:`~avflow_cli.train.common.run_configs` and its checks; returns (model, train, preset, fresh)."""

    def preset_configs(name: str) -> tuple[T2TConfig, TrainConfig]:
        return t2t_preset(name), replace(TrainConfig(), **PRESET_TRAIN[name])

    model_cfg, train_cfg, preset, _, resumed = run_configs(T2TConfig, preset_configs, out, preset, config_file, overrides,
                                                           resume, windows=False)  # whole utterances allowed
    return model_cfg, train_cfg, preset, not resumed


def build_t2t_task(
    data: str | Path, out: str | Path, model_cfg: T2TConfig, train_cfg: TrainConfig, preset: str, fresh: bool, dist: Dist
) -> TrainTask:
    """Everything the shared loop needs to train text-to-tokens on ``data``."""
    utts = load_utterances(data, cache=Path(out) / IDS_CACHE if dist.is_main else None)
    train_utts, val_utts = split_utterances(utts, train_cfg.seed)
    if fresh and model_cfg.preset != "release":
        mean, std = token_statistics(train_utts, train_cfg.seed)
        model_cfg = replace(model_cfg, token_mean=mean, token_std=std)
    source = read_ljspeech_source(data)  # the tokens it learns to write, checked against AV-Flow's at synthesis
    if not fresh and not compatible(model_cfg.token_source, source):
        raise AvflowError(f"{data}: holds {source} tokens but this run was trained on {model_cfg.token_source} tokens")
    if source and (fresh or not model_cfg.token_source):
        model_cfg = replace(model_cfg, token_source=source)
    torch.manual_seed(train_cfg.seed)  # identical initial weights on every rank and every run
    model = TextToTokens(model_cfg)
    train_set = T2TBatches(train_utts, train_cfg.batch_size, train_cfg.seed, dist.rank, dist.world)

    def loss_fn(net: torch.nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, Any]]:
        terms = net(batch["x"], batch["x_lengths"], batch["tokens"], batch["y_lengths"], train_cfg.segment_frames)
        return terms["dur"] + terms["prior"] + terms["cfm"], {k: v.detach() for k, v in terms.items()}

    def make_batches(start: int, end: int) -> torch.utils.data.DataLoader:
        # A private generator: a DataLoader otherwise draws its base seed from the global RNG when
        # its iterator starts, which shifts the training noise of a resumed run by one draw.
        workers = train_cfg.num_workers
        return torch.utils.data.DataLoader(
            train_set, batch_size=None, sampler=range(start, end), num_workers=workers,
            prefetch_factor=2 if workers else None, generator=torch.Generator().manual_seed(train_cfg.seed),
        )

    def validate(ema_model: torch.nn.Module) -> dict[str, float]:
        return {**validation_losses(ema_model, val_utts, train_cfg.batch_size),
                "dur_ratio": duration_ratio(ema_model, val_utts, train_cfg.batch_size)}

    def sample(ema_model: torch.nn.Module, step: int, out_dir: Path) -> None:
        write_sample(ema_model, (val_utts or train_utts)[0], step, out_dir)

    return TrainTask(
        kind=KIND, model=model, train=train_cfg, model_config=model_cfg, normalization=normalization_of(model_cfg),
        preset=preset, make_batches=make_batches, loss_fn=loss_fn,
        validate=validate if val_utts else None, sample=sample,
    )


@torch.no_grad()
def validation_losses(model: TextToTokens, utts: list[Utterance], batch_size: int) -> dict[str, float]:
    """Mean loss terms over the validation utterances with fixed noise and t (comparable across steps)."""
    device = model.mean.device
    state = torch.get_rng_state()
    torch.manual_seed(VAL_SEED)
    model.eval()
    totals: dict[str, float] = {}
    try:
        for s in range(0, len(utts), batch_size):
            batch = {k: v.to(device) for k, v in collate_utterances(utts[s : s + batch_size]).items()}
            terms = model.compute_loss(batch["x"], batch["x_lengths"], batch["tokens"], batch["y_lengths"])
            n = batch["x"].shape[0]
            for k, v in {"loss": sum(terms.values()), **terms}.items():
                totals[k] = totals.get(k, 0.0) + float(v) * n
    finally:
        torch.set_rng_state(state)
    return {k: v / len(utts) for k, v in totals.items()}


def write_sample(model: TextToTokens, utt: Utterance, step: int, out_dir: Path) -> Path:
    """Synthesize one utterance's tokens and draw them beside the truth (PNG)."""
    from avflow_cli.train.plots import plot_streams

    gen = model.synthesize(utt.text, steps=model.config.steps, seed=0)  # (T', 29)
    truth = load_tokens_fps(utt.tokens_path)  # (T, 29)
    return plot_streams(out_dir / f"sample-{step:07d}.png", [("tokens", gen, truth)], FPS,
                        f"step {step}: {utt.text[:60]} ({len(gen)} vs {len(truth)} frames)")


def train_t2t(
    data: str | Path, out: str | Path, *, preset: str = "tiny", config_file: str | Path | None = None,
    overrides: dict[str, Any] | None = None, resume: bool = False, device: str = "auto",
    stop_after: int | None = None, show_progress: bool = True, calibrate_durations: bool = True,
) -> dict[str, Any]:
    """Train (or resume) a text-to-tokens run in ``out`` from an LJSpeech-layout folder ``data``.

    Returns the loop's summary (``step``, ``last_loss``, ``val``, ``seconds``; when the run
    reached its last step and ``calibrate_durations``, also ``calibration``: the
    ``DurationCalibration`` stored in its config, or ``calibration_error`` saying why none was).
    The run directory is a model directory: ``load_t2t(out)`` gives the EMA model. A finished run
    resumed at its own step count only calibrates again.
    """
    dist = setup_distributed(device)
    model_cfg, train_cfg, preset, fresh = t2t_configs(out, preset, config_file, overrides, resume)
    if RunDir(out).has_checkpoint() and not resume:
        raise AvflowError(f"{out}: already holds a training run; pass --resume to continue it or choose a new --out")
    task = build_t2t_task(data, out, model_cfg, train_cfg, preset, fresh, dist)
    summary = run_training(task, out, resume=resume, dist=dist, stop_after=stop_after, show_progress=show_progress)
    if calibrate_durations and dist.is_main and summary["step"] >= train_cfg.steps:
        try:
            summary["calibration"] = calibrate_model_dir(out, data, train_cfg.batch_size)
        except AvflowError as err:  # the weights are trained and saved: say why the pace is not set
            summary["calibration_error"] = str(err)
    return summary

