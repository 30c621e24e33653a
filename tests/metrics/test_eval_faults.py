"""``eval`` checks its inputs before it generates or writes anything."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from avflow_cli.cli.main import app
from avflow_cli.data.schema import ShardIndex

runner = CliRunner()


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Short synthetic shards and an untrained tiny AV-Flow model directory."""
    import torch

    from avflow_cli.data.synthetic import make_synthetic_shards
    from avflow_cli.models.avflow import AVFlow
    from avflow_cli.models.config import AVFlowConfig
    from avflow_cli.models.normalize import Normalizer
    from avflow_cli.models.registry import save_model_dir

    root = tmp_path_factory.mktemp("eval_faults")
    make_synthetic_shards(root / "shards", num_clips=3, frames=80, clips_per_shard=1)
    torch.manual_seed(0)
    cfg = AVFlowConfig(face_dim=16, d_model=32, hidden_dim=64, heads=2, depth=1, steps=2)
    norm = Normalizer.for_config(cfg, ShardIndex.load(root / "shards"))
    save_model_dir(root / "avflow", "avflow", cfg, AVFlow(cfg).state_dict(), norm.to_json(), preset="tiny")
    return root / "shards", root / "avflow"


def _broken_test_shard(shards: Path, dest: Path, how: str) -> Path:
    shutil.copytree(shards, dest)
    test_clip = ShardIndex.load(dest).split("test")[0]
    shard = dest / test_clip.shard
    if how == "missing":
        shard.unlink()
    else:
        shard.write_bytes(shard.read_bytes()[:200])
    return shard


@pytest.mark.parametrize("how", ["missing", "truncated"])
def test_model_eval_with_a_broken_shard_fails_before_generating(setup: tuple[Path, Path], tmp_path: Path, how: str) -> None:
    shards, model = setup
    bad = _broken_test_shard(shards, tmp_path / "shards", how)
    out = tmp_path / "eval"
    result = runner.invoke(app, ["eval", "--model", str(model), "--data", str(bad.parent), "--out", str(out),
                                 "--no-wer", "--plots", "0", "--vocoder", "griffinlim", "--no-measure-speed"])
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and bad.name in errors[0], result.output
    assert "generating" not in result.output
    assert not out.exists()  # no empty clips/ or generated/ folders


def test_dir_eval_writes_nothing_when_inputs_are_bad(setup: tuple[Path, Path], tmp_path: Path) -> None:
    shards, _ = setup
    gen = tmp_path / "gen"
    gen.mkdir()
    result = runner.invoke(app, ["eval", "--from-dir", str(gen), "--data", str(shards), "--no-wer", "--plots", "0"])
    assert result.exit_code == 2 and "no generated clip folder matches" in result.output, result.output
    assert sorted(p.name for p in gen.iterdir()) == []  # no eval/clips/ left behind
    result = runner.invoke(app, ["eval", "--from-dir", str(gen), "--data", str(tmp_path / "nowhere"), "--no-wer"])
    assert result.exit_code == 2 and "index.json" in result.output, result.output
    assert sorted(p.name for p in gen.iterdir()) == []


@pytest.mark.parametrize("option, value, message", [
    ("--mcd-order", "0", "--mcd-order must be between 1 and 79"), ("--mcd-order", "99999999999999999999", "--mcd-order"),
    ("--beat-sigma-s", "0", "--beat-sigma-s must be a positive"), ("--beat-sigma-s", "nan", "--beat-sigma-s"),
    ("--lip-threshold", "nan", "--lip-threshold must be a finite"), ("--smile-threshold", "inf", "--smile-threshold"),
    ("--plots", "-1", "--plots must be 0 or more"), ("--steps", "0", "--steps must be at least 1"),
    ("--steps", "99999999999999999999", "--steps must be at most"), ("--seed", "99999999999999999999", "--seed"),
])
def test_absurd_numbers_are_one_line_errors(setup: tuple[Path, Path], tmp_path: Path, option: str, value: str,
                                            message: str) -> None:
    shards, model = setup
    out = tmp_path / "eval"
    result = runner.invoke(app, ["eval", "--model", str(model), "--data", str(shards), "--out", str(out), "--no-wer",
                                 "--plots", "0", "--no-measure-speed", option, value])
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0], result.output
    assert not out.exists()


def test_old_option_names_still_work_with_a_note(setup: tuple[Path, Path], tmp_path: Path) -> None:
    """--beat-sigma/--asr/--speed were renamed to the API's names; the old spellings are hidden aliases."""
    shards, model = setup
    out = tmp_path / "eval"
    result = runner.invoke(app, ["eval", "--model", str(model), "--data", str(shards), "--out", str(out), "--no-wer",
                                 "--plots", "0", "--no-speed", "--asr", "pocketsphinx", "--beat-sigma", "0"])
    assert result.exit_code == 2, result.output
    for old, new in (("--speed/--no-speed", "--measure-speed"), ("--asr", "--asr-backend"), ("--beat-sigma", "--beat-sigma-s")):
        assert f"{old} is deprecated; use {new}" in result.output
    assert "--beat-sigma-s must be a positive" in result.output and not out.exists()
    help_text = runner.invoke(app, ["eval", "--help"]).output
    assert "--asr-backend" in help_text and "--beat-sigma " not in help_text and "--no-speed" not in help_text


def test_rerun_with_other_settings_regenerates_and_rescores(setup: tuple[Path, Path], tmp_path: Path) -> None:
    import json

    shards, model = setup
    out = tmp_path / "eval"
    args = ["eval", "--model", str(model), "--data", str(shards), "--out", str(out), "--no-wer", "--plots", "0",
            "--no-measure-speed", "--vocoder", "hifigan"]
    first = runner.invoke(app, [*args, "--seed", "0"])
    assert first.exit_code == 0, first.output
    clip = next((out / "generated").iterdir())
    meta0, fd0 = json.loads((clip / "meta.json").read_text()), json.loads((out / "metrics.json").read_text())
    same = runner.invoke(app, [*args, "--seed", "0"])
    assert same.exit_code == 0 and json.loads((clip / "meta.json").read_text()) == meta0  # kept
    other = runner.invoke(app, [*args, "--seed", "1"])
    assert other.exit_code == 0, other.output
    assert json.loads((clip / "meta.json").read_text())["seed"] == 1  # generated again, not reused
    fd1 = json.loads((out / "metrics.json").read_text())
    assert fd1["metrics"]["FD_e"] != fd0["metrics"]["FD_e"]  # and scored again


def test_out_holding_other_files_is_refused(setup: tuple[Path, Path], tmp_path: Path) -> None:
    shards, model = setup
    user = tmp_path / "results"
    user.mkdir()
    (user / "metrics.md").write_text("my own table")  # a name eval would overwrite …
    (user / "paper.tex").write_text("draft")  # … in a folder that is not an evaluation's
    afile = tmp_path / "out.txt"
    afile.write_text("x")
    for out, message in ((user, "holds files an evaluation did not write (paper.tex)"), (afile, "exists and is a file")):
        result = runner.invoke(app, ["eval", "--model", str(model), "--data", str(shards), "--out", str(out),
                                     "--no-wer", "--plots", "0", "--no-measure-speed"])
        assert result.exit_code == 2 and message in result.output, result.output
    assert (user / "metrics.md").read_text() == "my own table" and sorted(p.name for p in user.iterdir()) == [
        "metrics.md", "paper.tex"]
    assert afile.read_text() == "x"
