"""``eval --model``: generate every test clip with a (random-init) tiny model, then score it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from avflow_cli.cli.main import app
from avflow_cli.data.schema import ShardIndex
from avflow_cli.evaluate import EvalSettings, evaluate_model
from avflow_cli.metrics.generated import load_prediction

runner = CliRunner()


@pytest.fixture(scope="module")
def short_shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Synthetic shards with short clips (0.9 s): CPU vocoding stays a few seconds."""
    from avflow_cli.data.synthetic import make_synthetic_shards

    out = tmp_path_factory.mktemp("short_shards")
    make_synthetic_shards(out, num_clips=3, frames=80)
    return out


def _tiny_model(shards: Path, root: Path) -> Path:
    """An untrained AV-Flow + head-VAE pair in model directories, as training writes them."""
    import torch

    from avflow_cli.models.avflow import AVFlow
    from avflow_cli.models.config import AVFlowConfig, HeadVAEConfig
    from avflow_cli.models.headvae import HeadVAE
    from avflow_cli.models.normalize import Normalizer
    from avflow_cli.models.registry import save_model_dir

    torch.manual_seed(0)
    cfg = AVFlowConfig(face_dim=16, d_model=32, hidden_dim=64, heads=2, depth=1, steps=2)
    norm = Normalizer.for_config(cfg, ShardIndex.load(shards))
    save_model_dir(root / "avflow", "avflow", cfg, AVFlow(cfg).state_dict(), norm.to_json(),
                   preset="tiny", components={"head_vae": "../headvae"})
    vcfg = HeadVAEConfig(ff_dim=16)
    save_model_dir(root / "headvae", "headvae", vcfg, HeadVAE(vcfg).state_dict(), preset="tiny")
    return root / "avflow"


def test_model_path_generates_scores_and_resumes(short_shards, tmp_path) -> None:
    model = _tiny_model(short_shards, tmp_path)
    settings = EvalSettings(wer=False, plots=0, vocoder="hifigan")
    res = evaluate_model(model, short_shards, settings=settings, measure_speed=False, show_progress=False)
    out = model / "eval" / "test"
    test_ids = [c.id for c in ShardIndex.load(short_shards).split("test")]
    pred = load_prediction(out / "generated" / test_ids[0])
    assert pred.face.shape == (80, 16) and pred.head_pose.shape == (80, 7) and pred.wav is not None
    assert res["source"] == "ground-truth tokens" and res["clips"] == len(test_ids)
    assert res["metrics"]["FD_e"] > 0 and res["metrics"]["MCD"] > 0 and res["metrics"]["BC_h"] is not None
    assert res["speed"]["avflow"] > 0  # per-clip timings from meta.json, scaled to 20 s
    mtime = (out / "generated" / test_ids[0] / "motion.npz").stat().st_mtime_ns
    r = runner.invoke(app, ["eval", "--model", str(model), "--data", str(short_shards), "--no-wer",
                            "--plots", "0", "--vocoder", "hifigan", "--no-measure-speed"])
    assert r.exit_code == 0, r.output
    assert (out / "generated" / test_ids[0] / "motion.npz").stat().st_mtime_ns == mtime  # not regenerated
    assert json.loads((out / "metrics.json").read_text())["metrics"]["FD_e"] == res["metrics"]["FD_e"]
    assert np.isfinite(res["metrics"]["Div_e"])


def test_measure_speed_times_every_stage_on_20_s(short_shards, tmp_path) -> None:
    """Timed through the Synthesizer (docs/ARCHITECTURE.md §6): each stage it runs sees a 20 s input."""
    from avflow_cli.constants import SEGMENT_FRAMES
    from avflow_cli.metrics.speed import measure_speed
    from avflow_cli.synth import Synthesizer

    synth = Synthesizer(_tiny_model(short_shards, tmp_path), vocoder="griffinlim", device="cpu")
    seen: dict[str, list] = {"head": [], "mel": []}

    class Stub:
        name, sample_rate = "stub", 22050

        def decode_pose(self, latent):
            seen["head"].append(latent.shape)
            return np.zeros((len(latent), 7), np.float32)

        def __call__(self, mel):
            seen["mel"].append(tuple(mel.shape))
            return mel.new_zeros(1, mel.shape[1] * 256)

    synth.head_vae = synth.vocoder = Stub()
    tokens = np.zeros((100, 29), np.float32)
    speed = measure_speed(synth, tokens, steps=1, repeats=2)
    assert seen["mel"] == [(1, SEGMENT_FRAMES, 80)] * 3  # a warm-up, then the 2 timed calls
    assert seen["head"] == [(SEGMENT_FRAMES, 8)] * 3
    assert {"avflow", "head_vae", "vocoder", "total"} <= set(speed) and "t2t" not in speed
    assert speed["total"] == speed["avflow"] + speed["head_vae"] + speed["vocoder"]
    assert abs(speed["seconds_generated"] - 20.0) < 0.02


def test_from_text_path_uses_t2t(short_shards, tmp_path) -> None:
    import torch

    from avflow_cli.models.text2tokens import TextToTokens, preset, save_t2t

    model = _tiny_model(short_shards, tmp_path)
    torch.manual_seed(0)
    save_t2t(tmp_path / "t2t", TextToTokens(preset("tiny")).eval())  # found as the model's sibling
    test_id = ShardIndex.load(short_shards).split("test")[0].id
    (tmp_path / "texts.json").write_text(json.dumps({test_id: "Hi there."}))
    settings = EvalSettings(wer=False, plots=0, vocoder="hifigan", texts=str(tmp_path / "texts.json"))
    res = evaluate_model(model, short_shards, from_text=True, settings=settings, measure_speed=False, show_progress=False)
    assert res["source"] == "text"
    pred = load_prediction(model / "eval" / "test-text" / "generated" / test_id)
    assert pred.text == "Hi there." and pred.meta["from_text"] is True and "t2t" in pred.meta["timings_s"]
    assert pred.tokens.shape[0] == pred.face.shape[0]
