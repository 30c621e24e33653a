"""Duration calibration of text-to-tokens: the factor that gives utterances their true length,
found on a model with a known bias, stored by training, used by synthesis."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from avflow_cli.data.synthetic_ljspeech import make_synthetic_ljspeech
from avflow_cli.data.t2t_dataset import collate_utterances, load_utterances
from avflow_cli.errors import AvflowError
from avflow_cli.models.text2tokens import TextToTokens, load_t2t, preset
from avflow_cli.train.t2t_calibrate import calibrate, frame_counts
from avflow_cli.train.t2t import train_t2t

FAST = {"train.batch_size": 4, "train.log_every": 5, "train.sample_every": 0, "train.warmup_steps": 5,
        "train.lr": 1e-3}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_synthetic_ljspeech(tmp_path_factory.mktemp("lj"), n=24, words=(2, 4))


def _biased_model(frames: float) -> TextToTokens:
    """A tiny model whose duration predictor says about ``frames`` for a symbol (varying by symbol,
    so whole-frame rounding does not move every symbol at once)."""
    torch.manual_seed(0)
    model = TextToTokens(preset("tiny")).eval()
    proj = model.encoder.proj_w.proj
    with torch.no_grad():
        proj.weight.mul_(0.5)
        proj.bias.fill_(float(torch.log(torch.tensor(frames))))
    return model


def test_frame_counts_follow_the_models_rounding() -> None:
    d = torch.tensor([0.4, 1.5, 2.6])
    assert frame_counts(d, 1.0, "round") == 0 + 2 + 3
    assert frame_counts(d, 1.0, "ceil") == 1 + 2 + 3
    assert frame_counts(d, 2.0, "round") == 1 + 3 + 5


def test_calibration_finds_a_known_bias_and_synthesis_uses_it(corpus: Path) -> None:
    utts = load_utterances(corpus)
    true_frames = int(collate_utterances(utts)["y_lengths"].sum())
    model = _biased_model(2.0)  # far shorter than the corpus's symbols
    result = calibrate(model, utts)
    assert result.ratio_before < 0.8 and result.scale > 1.2
    assert result.ratio_after == pytest.approx(1.0, abs=0.01)
    assert result.utterances == len(utts)

    def spoken(m: TextToTokens) -> int:
        return sum(len(m.synthesize(u.text, steps=1)) for u in utts)

    before = spoken(model)
    model.config.duration_scale = result.scale
    after = spoken(model)
    assert before == pytest.approx(result.ratio_before * true_frames, rel=0.02)
    assert after == pytest.approx(true_frames, rel=0.02)  # the utterances' own pace


def test_a_bias_beyond_reason_is_refused(corpus: Path) -> None:
    with pytest.raises(AvflowError, match="not calibrated"):
        calibrate(_biased_model(1e-4), load_utterances(corpus))
    with pytest.raises(AvflowError, match="at least one utterance"):
        calibrate(_biased_model(2.0), [])


def test_training_stores_the_scale_and_an_interrupted_run_does_not(corpus: Path, tmp_path: Path) -> None:
    opts = {**FAST, "train.steps": 30, "train.val_every": 30, "train.ckpt_every": 10}
    cut = train_t2t(corpus, tmp_path / "run", preset="tiny", overrides=opts, device="cpu", show_progress=False,
                    stop_after=10)
    assert "calibration" not in cut  # not finished: nothing measured on half-trained weights
    assert json.loads((tmp_path / "run" / "config.json").read_text())["model"]["duration_scale"] == 1.0
    summary = train_t2t(corpus, tmp_path / "run", preset="tiny", overrides=opts, device="cpu", show_progress=False,
                        resume=True)
    cal = summary["calibration"]
    assert cal.ratio_after == pytest.approx(1.0, abs=0.02) and cal.scale != 1.0
    assert json.loads((tmp_path / "run" / "config.json").read_text())["model"]["duration_scale"] == cal.scale
    assert load_t2t(tmp_path / "run").config.duration_scale == cal.scale
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [r["val/dur_ratio"] for r in log if "val/dur_ratio" in r]  # validation reports the raw pace
    again = train_t2t(corpus, tmp_path / "run", preset="tiny", overrides=opts, device="cpu", show_progress=False,
                      resume=True)  # finished: resuming only measures again, on the same weights
    assert again["calibration"].scale == cal.scale

    plain = train_t2t(corpus, tmp_path / "plain", preset="tiny", overrides={**opts, "train.steps": 10}, device="cpu",
                      show_progress=False, calibrate_durations=False)
    assert "calibration" not in plain
    assert load_t2t(tmp_path / "plain").config.duration_scale == 1.0


def test_cli_reports_the_calibration(corpus: Path, tmp_path: Path) -> None:
    import typer
    from typer.testing import CliRunner

    from avflow_cli.cli import train_t2t as cli

    app = typer.Typer()
    cli.register(app)
    app.command("noop")(lambda: None)
    res = CliRunner().invoke(app, ["t2t", "--data", str(corpus), "--out", str(tmp_path / "run"), "--steps", "4",
                                   "--batch-size", "2", "--set", "train.val_every=0", "--set", "train.sample_every=0",
                                   "--device", "cpu"])
    assert res.exit_code == 0, res.output
    assert "durations calibrated on" in res.output and "model.duration_scale" in res.output
    help_text = CliRunner().invoke(app, ["t2t", "--help"], env={"COLUMNS": "300"}).output
    assert "--calibrate-durations" in help_text and "--no-calibrate-durations" in help_text


def test_duration_scale_is_checked() -> None:
    with pytest.raises(AvflowError, match="duration_scale"):
        preset("tiny", duration_scale=0.0).validate()


def test_calibrate_command_on_an_existing_model(corpus: Path, tmp_path: Path) -> None:
    """`avflow train calibrate-t2t` gives a model trained without calibration its pace, measured only
    on utterances it was trained on; a folder that is not a model, or foreign data, is one line."""
    from typer.testing import CliRunner

    from avflow_cli.cli.main import app

    run = tmp_path / "run"
    train_t2t(corpus, run, preset="tiny", overrides={**FAST, "train.steps": 10, "train.val_every": 0}, device="cpu",
              show_progress=False, calibrate_durations=False)
    res = CliRunner().invoke(app, ["train", "calibrate-t2t", str(run), "--data", str(corpus)])
    assert res.exit_code == 0, res.output
    scale = load_t2t(run).config.duration_scale
    assert scale != 1.0 and f"model.duration_scale = {scale:g}" in res.output

    other = make_synthetic_ljspeech(tmp_path / "other", n=4, words=(5, 6), seed=7)
    res = CliRunner().invoke(app, ["train", "calibrate-t2t", str(run), "--data", str(other)])
    assert res.exit_code != 0 and "none of its utterances" in res.output and "Traceback" not in res.output
    assert load_t2t(run).config.duration_scale == scale  # unchanged by the refused call
    res = CliRunner().invoke(app, ["train", "calibrate-t2t", str(tmp_path), "--data", str(corpus)])
    assert res.exit_code != 0 and "config.json" in res.output and "Traceback" not in res.output
