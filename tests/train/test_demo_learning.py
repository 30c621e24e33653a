"""The model really learns on the demo corpus (real flite speech, demo avatar): slow end-to-end run.

corpus (3 min) → `prep all` → head VAE → `prep encode-head` → tiny AV-Flow for a few minutes of
CPU → the validation loss falls by a clear factor, and on a held-out clip the generated lip
opening follows the true one (lips close on bilabials and pauses) and the generated mel energy
follows the true speech.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from avflow_cli.cli.main import app

pytestmark = [pytest.mark.slow, pytest.mark.e2e,
              pytest.mark.skipif(shutil.which("flite") is None, reason="the demo corpus needs flite")]


def _run(args: list[str]) -> None:
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, (args, res.output)


def test_tiny_avflow_learns_lips_and_speech_on_demo_corpus(tmp_path: Path) -> None:
    from avflow_cli import load_model
    from avflow_cli.data.demo_corpus import generate_corpus
    from avflow_cli.data.schema import ShardIndex
    from avflow_cli.data.shards import read_clip
    from avflow_cli.models.inference import generate
    from avflow_cli.train.avflow import avflow_configs, build_avflow_task, train_avflow
    from avflow_cli.train.common import Dist
    from avflow_cli.render.demo_avatar import FaceDecoder

    generate_corpus(tmp_path / "corpus", minutes=3.0, seed=0, show_progress=False)
    _run(["prep", "all", str(tmp_path / "corpus"), str(tmp_path / "prep")])
    shards = tmp_path / "prep" / "shards"
    _run(["train", "headvae", "--data", str(shards), "--out", str(tmp_path / "vae"), "--steps", "150", "--device", "cpu"])
    _run(["prep", "encode-head", "--data", str(shards), "--head-vae", str(tmp_path / "vae")])

    over = {"train.steps": "300", "train.val_every": "300", "train.sample_every": "300"}
    m, t, index, preset = avflow_configs(shards, tmp_path / "av", "tiny", None, over, False)
    task = build_avflow_task(shards, m, t, index, preset, Dist())
    init_val = task.validate(task.model)["loss"]
    summary = train_avflow(shards, tmp_path / "av", overrides=over, device="cpu", show_progress=False)
    assert summary["val"]["loss"] < 0.75 * init_val, (init_val, summary["val"])

    model = load_model(tmp_path / "av")
    decoder = FaceDecoder.load(next(shards.glob("face_decoder.npz")))
    clip = ShardIndex.load(shards).split("val")[0]
    data = read_clip(shards, clip, ["tokens", "face", "mel", "valid"], 0, 1500)
    out = generate(model, data["tokens"], seed=0)
    valid = data["valid"]
    lips_gen, lips_true = decoder.lip_distance(out["face"][0])[valid], decoder.lip_distance(data["face"])[valid]
    assert np.corrcoef(lips_gen, lips_true)[0, 1] > 0.4
    energy_gen, energy_true = out["mel"][0].mean(1), data["mel"].mean(1)
    assert np.corrcoef(energy_gen, energy_true)[0, 1] > 0.7
