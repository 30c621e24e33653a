"""``avflow train headvae``: the head-pose VAE (docs/release_format.md §4) on ``head_pose`` windows of the shards.

The raw pose is z-scored with the train-split statistics of ``index.json`` (stored in the VAE's
config, so the model directory takes raw poses). Validation reports the reconstruction error of
the latent mean on fixed val windows, in normalised units and per raw component.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from avflow_cli import constants as K
from avflow_cli.data.dataset import FixedWindows, HeadPoseTransform, RandomWindows, WindowReader, batches, collate
from avflow_cli.data.schema import ShardIndex
from avflow_cli.errors import AvflowError
from avflow_cli.models.config import HeadVAEConfig, TrainConfig, headvae_preset
from avflow_cli.models.headvae import HeadVAE, vae_loss
from avflow_cli.train.common import Dist, TrainTask, run_configs, run_training, setup_distributed


def headvae_configs(
    shards: str | Path, out: str | Path, preset: str, config_file: str | Path | None, overrides: dict[str, Any] | None,
    resume: bool,
) -> tuple[HeadVAEConfig, TrainConfig, ShardIndex, str]:
    index = ShardIndex.load(shards)
    if "head_pose" not in index.dims or index.dims["head_pose"] != K.HEAD_POSE_DIM:
        raise AvflowError(f"{shards}: shards need a (T, {K.HEAD_POSE_DIM}) head_pose stream to train the head VAE")
    model_cfg, train_cfg, preset, touched, resumed = run_configs(
        HeadVAEConfig, headvae_preset, out, preset, config_file, overrides, resume)
    if train_cfg.init:
        raise AvflowError("train.init (starting from a trained model's weights) is for AV-Flow runs; the head VAE "
                          "trains from random weights in seconds")
    if not resumed:
        if "head_pose" not in index.stats:
            raise AvflowError(f"{shards}: index.json has no head_pose statistics; re-run `avflow prep index`")
        if "model.pose_mean" not in touched:
            mean, std = index.stats["head_pose"].arrays()
            model_cfg.pose_mean, model_cfg.pose_std = mean.tolist(), np.maximum(std, 1e-4).tolist()
    model_cfg.validate()
    return model_cfg, train_cfg, index, preset


def build_headvae_task(shards: str | Path, model_cfg: HeadVAEConfig, train_cfg: TrainConfig, index: ShardIndex,
                       preset: str, dist: Dist) -> TrainTask:
    torch.manual_seed(train_cfg.seed)
    model = HeadVAE(model_cfg)
    transform = HeadPoseTransform(model_cfg.pose_mean, model_cfg.pose_std)
    frames = train_cfg.segment_frames
    train_reader = WindowReader(shards, index.split("train"), ["head_pose"], frames)
    train_set = RandomWindows(train_reader, train_cfg.batch_size, train_cfg.seed, transform, dist.rank, dist.world)
    val_clips = index.split("val")
    val_set = FixedWindows(WindowReader(shards, val_clips, ["head_pose"], frames), train_cfg.val_windows, transform) if val_clips else None

    def loss_fn(net: torch.nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, Any]]:
        return vae_loss(net.module if hasattr(net, "module") else net, batch["pose"], batch["valid"])

    @torch.no_grad()
    def validate(ema_model: torch.nn.Module) -> dict[str, float]:
        device = next(ema_model.parameters()).device
        batch = collate([val_set[i] for i in range(len(val_set))])
        pose, valid = batch["pose"].to(device), batch["valid"].to(device).float()
        mu, _ = ema_model.encode(pose)
        err = (ema_model.decode(mu) - pose).abs()  # (B, T, 7) normalised units
        n = valid.sum().clamp_min(1.0)
        raw = err * ema_model.pose_std  # raw units (quaternion components, translation units)
        return {
            "recon": float((err.mean(-1) * valid).sum() / n),
            "quat_l1": float((raw[..., :4].mean(-1) * valid).sum() / n),
            "trans_l1": float((raw[..., 4:].mean(-1) * valid).sum() / n),
        }

    return TrainTask(
        kind="headvae", model=model, train=train_cfg, model_config=model_cfg, normalization=None, preset=preset,
        make_batches=lambda start, end: batches(train_set, start, end, train_cfg.num_workers),
        loss_fn=loss_fn, validate=validate if val_set is not None else None, sample=None,
    )


def train_headvae(
    shards: str | Path, out: str | Path, *, preset: str = "tiny", config_file: str | Path | None = None,
    overrides: dict[str, Any] | None = None, resume: bool = False, device: str = "auto",
    stop_after: int | None = None, show_progress: bool = True,
) -> dict[str, Any]:
    """Train (or resume) a head-pose VAE run in ``out``."""
    dist = setup_distributed(device)
    model_cfg, train_cfg, index, preset = headvae_configs(shards, out, preset, config_file, overrides, resume)
    task = build_headvae_task(shards, model_cfg, train_cfg, index, preset, dist)
    return run_training(task, out, resume=resume, dist=dist, stop_after=stop_after, show_progress=show_progress)
