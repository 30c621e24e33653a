"""``avflow train avflow``: AV-Flow from shards with OT-CFM, through the shared loop in ``common``.

Batches are random windows of the train split (``data/dataset.py``), normalised with the
model's normaliser; the loss is the masked per-stream L1 of ``models/flow.py`` with guidance
dropout; validation uses fixed val windows and fixed noise (comparable across steps and runs);
samples are short generations drawn as mel + motion images.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from avflow_cli import constants as K
from avflow_cli.data.dataset import (
    AVFlowTransform,
    FixedWindows,
    RandomWindows,
    WindowReader,
    batches,
    check_avflow_dims,
    collate,
)
from avflow_cli.data.schema import ShardIndex
from avflow_cli.data.token_source import bind_token_source
from avflow_cli.errors import AvflowError
from avflow_cli.models.avflow import AVFlow, drop_guidance
from avflow_cli.models.config import AVFlowConfig, TrainConfig, avflow_preset
from avflow_cli.models.flow import LossWeights, flow_loss
from avflow_cli.models.normalize import Normalizer
from avflow_cli.train.common import Dist, RunDir, TrainTask, run_configs, run_training, setup_distributed
from avflow_cli.train.finetune import check_init_tokens, init_model_config, init_preset, load_init_weights, resolve_init

VAL_SEED = 1234


def avflow_configs(
    shards: str | Path, out: str | Path, preset: str, config_file: str | Path | None, overrides: dict[str, Any] | None,
    resume: bool,
) -> tuple[AVFlowConfig, TrainConfig, ShardIndex, str]:
    """Preset (or the run's saved config when resuming) + file + ``--set``; face dim from the shards."""
    index = ShardIndex.load(shards)
    model_cfg, train_cfg, preset, touched, resumed = run_configs(
        AVFlowConfig, avflow_preset, out, preset, config_file, overrides, resume)
    if train_cfg.init and not resumed:  # fine-tuning: the init model's architecture (train/finetune.py)
        init_dir = resolve_init(train_cfg.init)
        start = init_model_config(init_dir)
        model_cfg, train_cfg, preset, touched, _ = run_configs(
            AVFlowConfig, init_preset(start, avflow_preset), out, preset, config_file, overrides, resume)
        train_cfg.init = str(init_dir)
        check_init_tokens(start, index, shards, init_dir)
    elif not resumed and "model.face_dim" not in touched and "face" in index.dims:
        model_cfg.face_dim = index.dims["face"]
    check_avflow_dims(index, model_cfg, shards)
    bind_token_source(model_cfg, index, shards, resumed)  # recorded, so synth can refuse a t2t of other tokens
    if model_cfg.participant_visual_dim > 0 and not (resumed and model_cfg.participant_face_source):
        # recorded like the token source, so a user's face is extracted the way the shards' was
        model_cfg.participant_face_source = str(index.extractors.get("p_smirk", ""))
    return model_cfg, train_cfg, index, preset


def build_avflow_task(
    shards: str | Path, model_cfg: AVFlowConfig, train_cfg: TrainConfig, index: ShardIndex, preset: str,
    dist: Dist, components: dict[str, str] | None = None, normalization: dict[str, Any] | None = None,
) -> TrainTask:
    """Everything the shared loop needs to train AV-Flow on ``shards``.

    ``normalization`` (a resumed run's saved one) wins over statistics of the current shards.
    """
    torch.manual_seed(train_cfg.seed)  # identical initial weights on every rank and every run
    model = AVFlow(model_cfg)
    normalizer = Normalizer.from_json(normalization) if normalization else Normalizer.for_config(model_cfg, index)
    model.normalizer = normalizer
    transform = AVFlowTransform(model_cfg, normalizer)
    streams = transform.streams()
    frames = train_cfg.segment_frames
    train_reader = WindowReader(shards, index.split("train"), streams, frames)
    train_set = RandomWindows(train_reader, train_cfg.batch_size, train_cfg.seed, transform, dist.rank, dist.world)
    val_clips = index.split("val")
    val_set = FixedWindows(WindowReader(shards, val_clips, streams, frames), train_cfg.val_windows, transform) if val_clips else None
    weights = LossWeights(train_cfg.lambda_mel, train_cfg.lambda_face, train_cfg.lambda_head)

    def loss_fn(net: torch.nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, Any]]:
        cond = drop_guidance(batch["cond"], model_cfg, model_cfg.guidance_dropout)  # (B, T, C)
        return flow_loss(net, model_cfg, batch["x"], cond, batch["valid"], weights, train_cfg.sigma_min,
                         frame_mask=batch["frame_mask"])

    def validate(ema_model: torch.nn.Module) -> dict[str, float]:
        return validation_loss(ema_model, val_set, weights, train_cfg)

    def sample(ema_model: torch.nn.Module, step: int, out_dir: Path) -> None:
        write_sample(ema_model, val_set or FixedWindows(train_reader, 1, transform), step, out_dir, train_cfg)

    return TrainTask(
        kind="avflow", model=model, train=train_cfg, model_config=model_cfg, normalization=normalizer.to_json(),
        preset=preset, components=dict(components or {}),
        make_batches=lambda start, end: batches(train_set, start, end, train_cfg.num_workers),
        loss_fn=loss_fn, validate=validate if val_set is not None else None, sample=sample,
    )


@torch.no_grad()
def validation_loss(model: torch.nn.Module, val_set: FixedWindows, weights: LossWeights, train_cfg: TrainConfig) -> dict[str, float]:
    """Mean flow loss over the fixed val windows with fixed noise and t (EMA weights, no dropout)."""
    device = next(model.parameters()).device
    gen = torch.Generator(device="cpu").manual_seed(VAL_SEED)
    totals: dict[str, float] = {}
    n = 0
    model.eval()
    for s in range(0, len(val_set), train_cfg.batch_size):
        batch = collate([val_set[i] for i in range(s, min(len(val_set), s + train_cfg.batch_size))])
        x, cond, valid, frames = batch["x"], batch["cond"], batch["valid"], batch["frame_mask"]
        x0 = torch.randn(x.shape, generator=gen)
        t = torch.rand(x.shape[0], generator=gen)
        loss, terms = flow_loss(model, model.config, x.to(device), cond.to(device), valid.to(device), weights,
                                train_cfg.sigma_min, x0=x0.to(device), t=t.to(device), frame_mask=frames.to(device))
        b = x.shape[0]
        for k, v in {"loss": loss, **terms}.items():
            totals[k] = totals.get(k, 0.0) + float(v) * b
        n += b
    return {k: v / max(n, 1) for k, v in totals.items()}


def write_sample(model: torch.nn.Module, windows: FixedWindows, step: int, out_dir: Path, train_cfg: TrainConfig) -> Path:
    """Generate one window's motion and mel from its tokens; draw them beside the truth."""
    from avflow_cli.models.inference import generate
    from avflow_cli.train.plots import plot_streams

    ex = windows[0]
    norm, cfg = model.normalizer, model.config
    T = min(train_cfg.sample_frames, int(ex["frame_mask"].sum()))  # real frames only
    cond = ex["cond"][:T]
    tokens = norm.denormalize("tokens", cond[:, : cfg.token_dim])
    out = generate(model, tokens, steps=cfg.steps, seed=0)
    truth = ex["x"][:T]
    face_t, head_t, mel_t = np.split(truth, [cfg.face_dim, cfg.face_dim + cfg.head_dim], axis=1)
    panels = [
        ("mel", out["mel"][0], norm.denormalize("mel", mel_t)),
        ("face", out["face"][0], norm.denormalize("face", face_t)),
        ("head latent", out["head"][0], norm.denormalize("head", head_t)),
    ]
    return plot_streams(out_dir / f"sample-{step:07d}.png", panels, K.FPS, f"step {step}")


def train_avflow(
    shards: str | Path, out: str | Path, *, preset: str = "tiny", config_file: str | Path | None = None,
    overrides: dict[str, Any] | None = None, resume: bool = False, device: str = "auto",
    head_vae: str | Path | None = None, stop_after: int | None = None, show_progress: bool = True,
) -> dict[str, Any]:
    """Train (or resume) an AV-Flow run in ``out``; returns the loop's summary."""
    dist = setup_distributed(device)
    model_cfg, train_cfg, index, preset = avflow_configs(shards, out, preset, config_file, overrides, resume)
    if train_cfg.bf16 and dist.device.type == "cpu" and dist.is_main:
        from avflow_cli.console import err_console

        err_console.print("note: bf16 autocast on CPU is slow for training; it is meant for GPUs")
    components = {}
    vae = head_vae or index.config.get("head_vae")
    if vae:
        vae_path = Path(vae).resolve()
        if not (vae_path / "config.json").is_file():
            raise AvflowError(f"{vae_path}: not a head-VAE model directory")
        components["head_vae"] = str(Path(_relpath(vae_path, Path(out).resolve())))
    saved_norm = None
    if resume and RunDir(out).config.is_file():
        from avflow_cli.models.registry import read_config

        saved_norm = read_config(out).get("normalization")
    task = build_avflow_task(shards, model_cfg, train_cfg, index, preset, dist, components, saved_norm)
    if train_cfg.init and not RunDir(out).has_checkpoint():  # a resumed run's weights come from its checkpoint
        load_init_weights(task.model, train_cfg.init)
    summary = run_training(task, out, resume=resume, dist=dist, stop_after=stop_after, show_progress=show_progress)
    if dist.is_main:
        from avflow_cli.render.avatar import carry_face_decoders

        carry_face_decoders(shards, out)  # synth previews and eval render with the data's avatar
    return summary


def _relpath(target: Path, start: Path) -> str:
    import os

    return os.path.relpath(target, start)
