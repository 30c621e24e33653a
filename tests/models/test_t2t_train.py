"""Training text-to-tokens on a synthetic LJSpeech-layout folder: loss falls, resume is exact, CLI, errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from avflow_cli.data.synthetic_ljspeech import make_synthetic_ljspeech, symbol_durations
from avflow_cli.data.t2t_dataset import T2TBatches, load_tokens_fps, load_utterances, read_metadata
from avflow_cli.errors import AvflowError
from avflow_cli.models.text2tokens import load_t2t
from avflow_cli.train.t2t import train_t2t

FAST = {"train.batch_size": 4, "train.log_every": 5, "train.val_every": 0, "train.sample_every": 0,
        "train.warmup_steps": 5, "train.lr": 1e-3}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_synthetic_ljspeech(tmp_path_factory.mktemp("lj"), n=12, words=(2, 3))


def test_dataset_reads_ljspeech_layout(corpus: Path) -> None:
    utts = load_utterances(corpus)
    assert len(utts) == 12 and utts[0].uid == "SYN-0000"
    tok = load_tokens_fps(utts[0].tokens_path)
    expected_frames = int(symbol_durations()[np.asarray(utts[0].ids)].sum())
    assert tok.shape[1] == 29 and abs(len(tok) - expected_frames) <= 2  # 50 Hz round trip, by timestamps
    batch = T2TBatches(utts, 3, seed=0)[7]
    assert batch["x"].shape[0] == 3 and batch["tokens"].shape[2] == 29
    assert (batch["y_lengths"] >= batch["x_lengths"]).all()
    assert torch.equal(batch["x"], T2TBatches(utts, 3, seed=0)[7]["x"])  # a pure function of the step


def test_tiny_training_lowers_loss_and_synthesizes(corpus: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    summary = train_t2t(corpus, run, preset="tiny", overrides={**FAST, "train.steps": 15}, device="cpu",
                        show_progress=False)
    assert summary["step"] == 15
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    first, last = log[0]["train/loss"], log[-1]["train/loss"]
    assert last < first - 0.5, (first, last)
    assert log[-1]["train/dur"] < log[0]["train/dur"]
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["kind"] == "t2t" and len(cfg["model"]["token_mean"]) == 29  # statistics from the data
    model = load_t2t(run)
    tokens = model.synthesize("the cat sat", steps=2)
    assert tokens.shape[1] == 29 and tokens.dtype == np.float32 and np.isfinite(tokens).all()
    with pytest.raises(AvflowError, match="pass --resume"):
        train_t2t(corpus, run, preset="tiny", overrides=FAST, device="cpu", show_progress=False)


def test_resume_continues_exactly(corpus: Path, tmp_path: Path) -> None:
    opts = {**FAST, "train.steps": 4, "train.log_every": 1, "train.ckpt_every": 2, "train.batch_size": 2}
    train_t2t(corpus, tmp_path / "full", preset="tiny", overrides=opts, device="cpu", show_progress=False)
    train_t2t(corpus, tmp_path / "cut", preset="tiny", overrides=opts, device="cpu", show_progress=False, stop_after=3)
    train_t2t(corpus, tmp_path / "cut", preset="tiny", overrides=opts, device="cpu", show_progress=False, resume=True)
    full = (tmp_path / "full" / "log.jsonl").read_text().splitlines()
    cut = (tmp_path / "cut" / "log.jsonl").read_text().splitlines()
    a, b = json.loads(full[-1]), json.loads(cut[-1])
    assert a["step"] == b["step"] == 4
    assert a["train/loss"] == pytest.approx(b["train/loss"], rel=1e-6)


def test_cli_command(corpus: Path, tmp_path: Path) -> None:
    import typer
    from typer.testing import CliRunner

    from avflow_cli.cli import train_t2t as cli

    app = typer.Typer()
    cli.register(app)
    app.command("noop")(lambda: None)  # a group with two commands keeps "t2t" as a subcommand
    out = tmp_path / "cli_run"
    res = CliRunner().invoke(app, ["t2t", "--data", str(corpus), "--out", str(out), "--steps", "2", "--batch-size", "2",
                                   "--set", "train.val_every=0", "--set", "train.sample_every=0", "--device", "cpu"])
    assert res.exit_code == 0, res.output
    assert "model directory" in res.output and (out / "model.safetensors").is_file()
    help_text = CliRunner().invoke(app, ["t2t", "--help"]).output
    assert "--resume" in help_text and "LJSpeech" in help_text


def test_data_errors(tmp_path: Path, corpus: Path) -> None:
    with pytest.raises(AvflowError, match="metadata.csv: missing"):
        read_metadata(tmp_path)
    (tmp_path / "metadata.csv").write_text("only-an-id\n")
    with pytest.raises(AvflowError, match="line 1"):
        read_metadata(tmp_path)
    (tmp_path / "metadata.csv").write_text("A|hello there|hello there\n")
    with pytest.raises(AvflowError, match="run `avflow prep tokens`"):
        load_utterances(tmp_path)
    (tmp_path / "tokens").mkdir()
    np.save(tmp_path / "tokens" / "A.npy", np.zeros((10, 7), np.float32))
    utts = load_utterances(tmp_path)
    with pytest.raises(AvflowError, match=r"expected \(N, 29\)"):
        load_tokens_fps(utts[0].tokens_path)


def _dtw_mse(a: np.ndarray, b: np.ndarray) -> float:
    """Mean squared frame distance along the best monotonic warping path (timing-insensitive)."""
    d = ((a[:, None, :] - b[None, :, :]) ** 2).mean(-1)  # (Ta, Tb)
    n, m = d.shape
    acc = np.full((n + 1, m + 1), np.inf)
    steps = np.zeros((n + 1, m + 1))
    acc[0, 0] = 0.0
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            prev = min((acc[i - 1, j - 1], i - 1, j - 1), (acc[i - 1, j], i - 1, j), (acc[i, j - 1], i, j - 1))
            acc[i, j] = d[i - 1, j - 1] + prev[0]
            steps[i, j] = steps[prev[1], prev[2]] + 1
    return float(acc[n, m] / steps[n, m])


@pytest.mark.slow
def test_tiny_model_learns_the_synthetic_language(tmp_path: Path) -> None:
    """300 steps: generated tokens match the truth up to timing, and lengths within 10 %."""
    corpus = make_synthetic_ljspeech(tmp_path / "lj", n=64, words=(3, 6))
    train_t2t(corpus, tmp_path / "run", preset="tiny", overrides={"train.steps": 300, "train.val_every": 0,
              "train.sample_every": 0, "train.ckpt_every": 300}, device="cpu", show_progress=False)
    model = load_t2t(tmp_path / "run")
    utts = load_utterances(corpus)[:4]
    for i, u in enumerate(utts):
        truth = load_tokens_fps(u.tokens_path)
        gen = model.synthesize(u.text, seed=0)
        assert abs(len(gen) / len(truth) - 1) < 0.1
        other = load_tokens_fps(utts[(i + 1) % len(utts)].tokens_path)
        assert _dtw_mse(gen, truth) < 0.5 * _dtw_mse(other, truth)


@pytest.mark.parametrize("setting, message", [("train.lr=-1", "train.lr must be"), ("train.segment_frames=-3", "segment_frames")])
def test_settings_are_checked_before_any_data_is_read(tmp_path: Path, setting: str, message: str) -> None:
    """Text-to-tokens resolves its configs through the shared run_configs, with its checks, first."""
    key, value = setting.split("=")
    with pytest.raises(AvflowError, match=message):  # not "metadata.csv missing": the folder is never read
        train_t2t(tmp_path / "no_such_data", tmp_path / "run", preset="tiny", overrides={key: value}, device="cpu",
                  show_progress=False)
    assert not (tmp_path / "run").exists()


def test_whole_utterances_stay_allowed(tmp_path: Path) -> None:
    from avflow_cli.train.t2t import t2t_configs

    _, train_cfg, _, fresh = t2t_configs(tmp_path / "run", "tiny", None, {"train.segment_frames": "0"}, False)
    assert train_cfg.segment_frames == 0 and fresh
