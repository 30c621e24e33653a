"""`avflow train avflow --init MODEL`: a run that starts from a trained model's weights."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from avflow_cli.cli.main import app
from avflow_cli.errors import AvflowError
from avflow_cli.train.avflow import train_avflow
from avflow_cli.train.headvae import train_headvae

# a network unlike the tiny preset's (d_model 96, depth 3), so the test sees whose architecture the run takes
ARCH = {"model.d_model": "32", "model.depth": "2", "model.hidden_dim": "64", "model.heads": "2"}
TRAIN = {"train.segment_frames": "64", "train.batch_size": "8", "train.warmup_steps": "0", "train.log_every": "1",
         "train.sample_every": "0", "train.ckpt_every": "0", "train.val_every": "1"}


@pytest.fixture(scope="module")
def trained(synthetic_shards: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model trained 150 steps on the synthetic shards: the init of the tests below."""
    out = tmp_path_factory.mktemp("init") / "model"
    over = {**ARCH, **TRAIN, "train.steps": "150", "train.lr": "3e-3", "train.warmup_steps": "10", "train.val_every": "0"}
    train_avflow(synthetic_shards, out, preset="tiny", overrides=over, device="cpu", show_progress=False)
    return out


def _one_step(shards: Path, out: Path, lr: str, **extra: str) -> dict:
    over = {**TRAIN, "train.steps": "1", "train.lr": lr, "train.ema_decay": "0.0", **extra}
    return train_avflow(shards, out, preset="tiny", overrides=over, device="cpu", show_progress=False)


def test_run_starts_from_the_init_weights_and_architecture(trained: Path, synthetic_shards: Path, tmp_path: Path) -> None:
    summary = _one_step(synthetic_shards, tmp_path / "ft", "1e-9", **{"train.init": str(trained), "model.temperature": "0.3"})
    start, after = load_file(trained / "model.safetensors"), load_file(tmp_path / "ft" / "model.safetensors")
    assert start.keys() == after.keys()
    for key in start:  # one step at lr 1e-9 moves nothing measurable: the run began at the init's weights
        torch.testing.assert_close(after[key], start[key], atol=1e-6, rtol=0)
    cfg = json.loads((tmp_path / "ft" / "config.json").read_text())
    init_cfg = json.loads((trained / "config.json").read_text())
    assert cfg["model"]["d_model"] == 32 and cfg["model"]["depth"] == 2  # the init's, not the tiny preset's
    assert cfg["model"]["temperature"] == 0.3  # --set still changes sampling settings
    assert cfg["train"]["init"] == str(trained.resolve())
    assert cfg["normalization"] == init_cfg["normalization"]  # the same shards: the same statistics
    # and it is a better start than random weights of the same architecture
    fresh = _one_step(synthetic_shards, tmp_path / "fresh", "1e-9", **ARCH)
    assert summary["val"]["loss"] < 0.85 * fresh["val"]["loss"], (summary["val"], fresh["val"])  # measured 0.76


def test_resume_needs_no_init_folder(trained: Path, synthetic_shards: Path, tmp_path: Path) -> None:
    init = tmp_path / "init"
    shutil.copytree(trained, init)
    over = {**TRAIN, "train.steps": "4", "train.lr": "1e-3", "train.ckpt_every": "2", "train.init": str(init)}
    train_avflow(synthetic_shards, tmp_path / "ft", preset="tiny", overrides=over, device="cpu", show_progress=False,
                 stop_after=3)
    shutil.rmtree(init)  # the checkpoint at step 2 holds the weights now
    summary = train_avflow(synthetic_shards, tmp_path / "ft", overrides={"train.steps": "4"}, resume=True, device="cpu",
                           show_progress=False)
    assert summary["step"] == 4


def test_init_refuses_other_tokens_other_kinds_and_other_architectures(
        trained: Path, synthetic_shards: Path, tmp_path: Path) -> None:
    w2v = tmp_path / "w2v"
    shutil.copytree(trained, w2v)
    cfg = json.loads((w2v / "config.json").read_text())
    cfg["model"]["token_source"] = "wav2vec2 (wav2vec2_asr_base_960h)"
    (w2v / "config.json").write_text(json.dumps(cfg))
    shards = tmp_path / "shards"
    shutil.copytree(synthetic_shards, shards)
    index = json.loads((shards / "index.json").read_text())
    index.setdefault("extractors", {})["tokens"] = "alignment (alignment-sounds-v2)"
    (shards / "index.json").write_text(json.dumps(index))
    with pytest.raises(AvflowError, match="trained on wav2vec2.*holds alignment"):
        _one_step(shards, tmp_path / "a", "1e-3", **{"train.init": str(w2v)})
    with pytest.raises(AvflowError, match="different architecture"):
        _one_step(synthetic_shards, tmp_path / "b", "1e-3", **{"train.init": str(trained), "model.depth": "3"})
    assert not (tmp_path / "b").exists()  # nothing half-made left behind
    with pytest.raises(AvflowError, match="no AV-Flow model here"):
        _one_step(synthetic_shards, tmp_path / "c", "1e-3", **{"train.init": str(tmp_path / "nothing")})
    with pytest.raises(AvflowError, match="train.init.*AV-Flow runs"):
        train_headvae(synthetic_shards, tmp_path / "d", preset="tiny", overrides={"train.init": str(trained)},
                      device="cpu", show_progress=False)


def test_cli_init_is_for_new_runs_only(trained: Path, synthetic_shards: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["train", "avflow", "--data", str(synthetic_shards), "--out", str(tmp_path / "r"),
                                      "--init", str(trained), "--resume"])
    assert result.exit_code != 0 and "drop --init" in result.output and "Traceback" not in result.output
    headvae_dir = tmp_path / "hv"
    shutil.copytree(trained, headvae_dir)
    cfg = json.loads((headvae_dir / "config.json").read_text())
    cfg["kind"] = "headvae"
    (headvae_dir / "config.json").write_text(json.dumps(cfg))
    result = CliRunner().invoke(app, ["train", "avflow", "--data", str(synthetic_shards), "--out", str(tmp_path / "r"),
                                      "--init", str(headvae_dir), "--steps", "1"])
    assert result.exit_code != 0 and "needs an AV-Flow model directory" in result.output
    assert not (tmp_path / "r").exists()


def test_cli_fine_tunes_from_a_model_directory(trained: Path, synthetic_shards: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["train", "avflow", "--data", str(synthetic_shards), "--out", str(tmp_path / "ft"),
                                      "--init", str(trained), "--steps", "2", "--set", "train.val_every=0",
                                      "--set", "train.sample_every=0"])
    assert result.exit_code == 0, result.output
    cfg = json.loads((tmp_path / "ft" / "config.json").read_text())
    assert cfg["train"]["init"] == str(trained.resolve()) and cfg["model"]["d_model"] == 32
