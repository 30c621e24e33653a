"""``synth -o``: only a synth output folder is replaced; user data and the model never are."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from avflow_cli.cli.main import app
from avflow_cli.fsutil import OUTPUT_MARKER, output_kind

runner = CliRunner()


def _synth(model: Path, out: Path, *extra: str) -> object:
    return runner.invoke(app, ["synth", "Hello there.", "-o", str(out), "--model", str(model),
                               "--vocoder", "hifigan", "--no-preview", *extra])


def _one_line_error(result: object, message: str) -> None:
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0], result.output  # one line, not wrapped
    assert "Traceback" not in result.output


def _model_files(model: Path) -> dict[str, bytes]:
    return {str(p.relative_to(model.parent)): p.read_bytes() for p in model.parent.rglob("*") if p.is_file()}


def test_rerun_replaces_its_own_output(tiny_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = _synth(tiny_model, out)
    assert first.exit_code == 0, first.output
    assert output_kind(out) == "synth"
    (out / "speech.wav").write_bytes(b"old")  # a re-run must write a fresh folder
    again = _synth(tiny_model, out)
    assert again.exit_code == 0, again.output
    assert (out / "speech.wav").read_bytes()[:4] == b"RIFF"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temporaries or .old left


def test_existing_file_is_refused_and_kept(tiny_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "notes.txt"
    out.write_text("my notes")
    _one_line_error(_synth(tiny_model, out), "exists and is a file")
    assert out.read_text() == "my notes"
    forced = _synth(tiny_model, out, "--force")
    assert forced.exit_code == 0, forced.output
    assert (out / "speech.wav").is_file()


def test_user_folder_is_refused_unless_force(tiny_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "thesis"
    out.mkdir()
    (out / "chapter1.tex").write_text("precious")
    _one_line_error(_synth(tiny_model, out), "holds files avflow did not write")
    assert (out / "chapter1.tex").read_text() == "precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["thesis"]
    forced = _synth(tiny_model, out, "--force")
    assert forced.exit_code == 0, forced.output
    # --force writes avflow's files into the folder; it never wipes the user's
    assert (out / "chapter1.tex").read_text() == "precious" and (out / "meta.json").is_file()


def test_empty_folder_is_used(tiny_model: Path, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = _synth(tiny_model, tmp_path / "empty")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "empty" / "speech.wav").is_file()


@pytest.mark.parametrize("where", ["model", "models", "component", "model_file"])
def test_model_and_components_are_never_replaced(tiny_model: Path, tmp_path: Path, where: str) -> None:
    models = tmp_path / "models"
    shutil.copytree(tiny_model.parent, models)
    model = models / "avflow"
    before = _model_files(model)
    out = {"model": model, "models": models, "component": models / "headvae", "model_file": model / "config.json"}[where]
    plain = _synth(model, out)  # refused: by the model rule, or as a folder avflow did not write as synth output
    assert plain.exit_code == 2 and "Traceback" not in plain.output, plain.output
    _one_line_error(_synth(model, out, "--force"), "which this command reads")
    assert _model_files(model) == before


def test_marker_of_another_kind_is_refused(tiny_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "clip"
    out.mkdir()
    (out / OUTPUT_MARKER).write_text("session\n")
    (out / "audio.wav").write_bytes(b"x")
    _one_line_error(_synth(tiny_model, out), "holds an avflow session folder")
    assert (out / "audio.wav").read_bytes() == b"x"


def test_current_folder_is_never_replaced(tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    (work / "keep.txt").write_text("x")
    for out in (Path("."), tmp_path):
        _one_line_error(_synth(tiny_model, out, "--force"), "current, home or root folder")
    assert (work / "keep.txt").read_text() == "x"
