"""``avflow train vocoder``: nonsense learning rates and time limits are refused before any data
is written, and non-finite weights are never saved as a student."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from avflow_cli.audio.student_vocoder import StudentConfig, StudentGenerator, save_student
from avflow_cli.cli.main import app
from avflow_cli.errors import AvflowError


@pytest.mark.parametrize(("option", "value", "words"), [
    ("--lr", "nan", "--lr must be a finite positive number, got nan"),
    ("--lr", "inf", "--lr must be a finite positive number, got inf"),
    ("--lr", "0", "--lr must be a finite positive number, got 0.0"),
    ("--max-minutes", "-1", "--max-minutes must be a finite positive number, got -1.0"),
    ("--max-minutes", "nan", "--max-minutes must be a finite positive number, got nan"),
])
def test_bad_values_are_refused_before_anything_is_written(tmp_path: Path, option: str, value: str, words: str) -> None:
    out = tmp_path / "run"
    res = CliRunner().invoke(app, ["train", "vocoder", "-o", str(out), option, value, "--no-evaluate"])
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert res.exit_code == 2 and len(lines) == 1 and words in lines[0], res.output
    assert not out.exists()


def test_non_finite_weights_are_never_saved(tmp_path: Path) -> None:
    model = StudentGenerator(StudentConfig())
    with torch.no_grad():
        next(model.parameters()).fill_(float("nan"))
    with pytest.raises(AvflowError, match="not saved: the student's weights are not finite"):
        save_student(model, tmp_path / "student")
    assert not (tmp_path / "student").exists()


def test_a_users_folder_is_not_a_run_directory(tmp_path: Path) -> None:
    out = tmp_path / "papers"
    (out / "data").mkdir(parents=True)
    (out / "data" / "table.csv").write_text("mine")
    (out / "draft.tex").write_text("mine")
    res = CliRunner().invoke(app, ["train", "vocoder", "-o", str(out), "--no-evaluate"])
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert res.exit_code == 2 and len(lines) == 1 and "not a vocoder run's (draft.tex)" in lines[0], res.output
    assert sorted(p.name for p in out.rglob("*")) == ["data", "draft.tex", "table.csv"]


def test_trainers_never_save_non_finite_weights(tmp_path: Path) -> None:
    """The shared checkpoint writer of train avflow/headvae/t2t: a diverged step is refused,
    the last good checkpoint stays."""
    from avflow_cli.train.common import EMA, RunDir, save_checkpoint

    model = torch.nn.Linear(3, 2)
    ema = EMA(model, decay=0.0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _step: 1.0)
    run = RunDir(tmp_path / "run")
    run.root.mkdir()
    save_checkpoint(run, 1, model, ema, optimizer, scheduler, [], "test")
    good = run.weights.read_bytes()
    with torch.no_grad():
        model.weight.fill_(float("inf"))
    ema.update(model, 2)
    with pytest.raises(AvflowError, match="step 2 not saved: the weights are not finite"):
        save_checkpoint(run, 2, model, ema, optimizer, scheduler, [], "test")
    assert run.weights.read_bytes() == good
