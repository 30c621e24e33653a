"""Head-VAE training, `prep encode-head` into shards, then AV-Flow training on those latents."""

from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import numpy as np
from typer.testing import CliRunner

from avflow_cli.cli.main import app
from avflow_cli.data.schema import ShardIndex
from avflow_cli.models.registry import load_head_vae
from avflow_cli.train.headvae import train_headvae


def test_headvae_train_encode_and_use(synthetic_shards: Path, tmp_path: Path) -> None:
    shards = tmp_path / "shards"
    shutil.copytree(synthetic_shards, shards)
    over = {"train.steps": "60", "train.segment_frames": "64", "train.batch_size": "8", "train.lr": "3e-3",
            "train.val_every": "60", "train.ckpt_every": "0", "train.warmup_steps": "5", "model.ff_dim": "32"}
    summary = train_headvae(shards, tmp_path / "vae", overrides=over, device="cpu", show_progress=False)
    assert summary["val"]["recon"] < 0.6  # normalised units: well below the ~0.8 of a constant guess
    vae = load_head_vae(tmp_path / "vae")
    index = ShardIndex.load(shards)
    assert np.allclose(vae.config.pose_mean, index.stats["head_pose"].mean, atol=1e-6)

    runner = CliRunner()
    res = runner.invoke(app, ["prep", "encode-head", "--data", str(shards), "--head-vae", str(tmp_path / "vae")])
    assert res.exit_code == 0, res.output
    assert "encoded" in res.output
    index = ShardIndex.load(shards)
    assert index.config["head_vae"] == str((tmp_path / "vae").resolve()) and index.dims["head"] == 8
    clip = index.clips[0]
    with h5py.File(shards / clip.shard) as f:
        head = f[clip.id]["head"][:]
        pose = f[clip.id]["head_pose"][:]
    np.testing.assert_allclose(head, vae.encode_mean(pose), atol=1e-5)
    res = runner.invoke(app, ["prep", "encode-head", str(shards), "--vae", str(tmp_path / "vae")])
    assert "0 shards encoded" in res.output  # re-run skips finished work
    assert "--vae is deprecated; use --head-vae" in res.output  # the old name still works
    res = runner.invoke(app, ["prep", "encode-head", str(shards)])
    assert res.exit_code == 2 and "--head-vae DIR" in res.output

    from avflow_cli import load_model
    from avflow_cli.train.avflow import train_avflow

    train_avflow(shards, tmp_path / "av", overrides={"train.steps": "1", "model.depth": "1", "model.d_model": "16",
                 "model.heads": "2", "model.hidden_dim": "16", "train.segment_frames": "32", "train.batch_size": "2"},
                 device="cpu", show_progress=False)
    assert load_model(tmp_path / "av").components["head_vae"] == (tmp_path / "vae").resolve()
