"""Training for real on synthetic shards: the loss falls, resume is exact, the CLI works."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from avflow_cli import load_model
from avflow_cli.errors import AvflowError
from avflow_cli.models.inference import generate
from avflow_cli.train.avflow import avflow_configs, build_avflow_task, train_avflow
from avflow_cli.train.common import Dist, RunDir

SMALL = {
    "model.d_model": "32", "model.depth": "2", "model.hidden_dim": "64", "model.heads": "2",
    "train.segment_frames": "64", "train.batch_size": "8", "train.lr": "3e-3", "train.warmup_steps": "10",
    "train.ema_decay": "0.9", "train.log_every": "1", "train.sample_every": "0", "train.ckpt_every": "0",
}


@pytest.mark.e2e
def test_tiny_model_learns(synthetic_shards: Path, tmp_path: Path) -> None:
    """Trained for real (kept in CI, seconds): the validation loss falls, and on a held-out clip the
    generated mel and face are measurably closer to the truth than the same network's untrained output."""
    from avflow_cli.data.shards import read_clip

    over = {**SMALL, "train.steps": "120", "train.val_every": "120", "train.sample_every": "120", "train.log_every": "20"}
    m, t, index, preset = avflow_configs(synthetic_shards, tmp_path / "run", "tiny", None, over, False)
    untrained = build_avflow_task(synthetic_shards, m, t, index, preset, Dist())
    init_val = untrained.validate(untrained.model)["loss"]
    summary = train_avflow(synthetic_shards, tmp_path / "run", overrides=over, device="cpu", show_progress=False)
    final = summary["val"]["loss"]
    assert final < 0.7 * init_val, (init_val, final)
    run = RunDir(tmp_path / "run")
    assert (run.samples / "sample-0000120.png").stat().st_size > 1000
    assert any(run.tb.iterdir())
    # the EMA model generates mel and face that follow the input tokens of a held-out clip
    clip = index.split("val")[0]
    data = read_clip(synthetic_shards, clip, ["tokens", "mel", "face"], 0, 200)
    before = generate(untrained.model.eval(), data["tokens"], steps=8, seed=0)
    after = generate(load_model(run.root), data["tokens"], steps=8, seed=0)

    def error(out: dict[str, np.ndarray], stream: str) -> float:
        return float(np.abs(out[stream][0] - data[stream]).mean())

    def energy_corr(out: dict[str, np.ndarray]) -> float:
        return float(np.corrcoef(out["mel"][0].mean(1), data["mel"].mean(1))[0, 1])

    # measured (seed 0): mel L1 1.03 → 0.68, face L1 0.52 → 0.14, mel-energy correlation 0.12 → 0.60
    for stream, ratio in (("mel", 0.8), ("face", 0.5)):
        assert error(after, stream) < ratio * error(before, stream), (stream, error(before, stream), error(after, stream))
    assert energy_corr(after) > 0.3 and energy_corr(after) > energy_corr(before) + 0.2, (energy_corr(before), energy_corr(after))


def _losses(run: Path) -> list[tuple[int, float]]:
    return [(e["step"], e["train/loss"]) for e in RunDir(run).read_log() if "train/loss" in e]


def test_resume_continues_the_same_loss_curve(synthetic_shards: Path, tmp_path: Path) -> None:
    over = {**SMALL, "train.steps": "6", "train.ckpt_every": "3", "train.val_every": "0", "model.depth": "1",
            "model.guidance_dropout": "0.5"}
    train_avflow(synthetic_shards, tmp_path / "full", overrides=over, device="cpu", show_progress=False)
    # interrupted after step 4 (checkpoint at 3, nothing saved at 4), then resumed
    train_avflow(synthetic_shards, tmp_path / "cut", overrides=over, device="cpu", show_progress=False, stop_after=4)
    assert RunDir(tmp_path / "cut").read_log()[-1]["step"] == 4
    with pytest.raises(AvflowError, match="--resume"):
        train_avflow(synthetic_shards, tmp_path / "cut", overrides=over, device="cpu", show_progress=False)
    train_avflow(synthetic_shards, tmp_path / "cut", overrides={"train.steps": "6"}, resume=True, device="cpu", show_progress=False)
    full, cut = _losses(tmp_path / "full"), _losses(tmp_path / "cut")
    assert [s for s, _ in cut] == [1, 2, 3, 4, 5, 6]
    np.testing.assert_allclose([v for _, v in cut], [v for _, v in full], rtol=1e-6)
    a, b = load_file(tmp_path / "full" / "model.safetensors"), load_file(tmp_path / "cut" / "model.safetensors")
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-6, atol=1e-7)


def test_resume_refuses_another_architecture(synthetic_shards: Path, tmp_path: Path) -> None:
    over = {**SMALL, "train.steps": "1", "model.depth": "1"}
    train_avflow(synthetic_shards, tmp_path / "r", overrides=over, device="cpu", show_progress=False)
    with pytest.raises(AvflowError, match="different architecture"):
        train_avflow(synthetic_shards, tmp_path / "r", overrides={"model.depth": "2", "train.steps": "2"}, resume=True,
                     device="cpu", show_progress=False)
    # the sampling temperature is no architecture: a resumed run may set it, and config.json records it
    train_avflow(synthetic_shards, tmp_path / "r", overrides={"model.temperature": "0.4", "train.steps": "2"}, resume=True,
                 device="cpu", show_progress=False)
    assert json.loads((tmp_path / "r" / "config.json").read_text())["model"]["temperature"] == 0.4


def test_cli_trains_and_writes_a_run_directory(synthetic_shards: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from avflow_cli.cli.main import app

    cfg = tmp_path / "c.yaml"
    cfg.write_text("model:\n  depth: 1\n  d_model: 16\n  heads: 2\n  hidden_dim: 16\ntrain:\n  segment_frames: 32\n  batch_size: 2\n")
    out = tmp_path / "run"
    res = CliRunner().invoke(app, ["train", "avflow", "--data", str(synthetic_shards), "--out", str(out), "--steps", "2",
                                   "--config", str(cfg), "--set", "train.val_every=2", "--device", "cpu"])
    assert res.exit_code == 0, res.output
    obj = json.loads((out / "config.json").read_text())
    assert obj["kind"] == "avflow" and obj["model"]["depth"] == 1 and obj["model"]["face_dim"] == 16
    assert obj["train"]["steps"] == 2 and (out / "train_state.pt").is_file()
    res = CliRunner().invoke(app, ["train", "avflow", "--data", str(tmp_path), "--out", str(out)])
    assert res.exit_code == 2 and "index.json" in res.output
