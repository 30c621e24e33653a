"""`make demo` ends with its own model against the shipped one (issue 22): the stage, its table,
and that it tells the user how to use the demo's model (a plain command uses the shipped one)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from rich.console import Console

from avflow_cli.cli.demo import comparison_table, demo_stages
from avflow_cli.demo import COMPARE_FILE, DemoPaths, DemoSettings


def test_compare_is_the_last_stage_and_can_be_skipped(tmp_path: Path) -> None:
    paths = DemoPaths(tmp_path)
    stages = demo_stages(paths, DemoSettings())
    assert stages[-1].name == "compare" and stages[-1].call is not None
    assert stages[-1].output == paths.compare / COMPARE_FILE and "--sentences" in stages[-1].args
    assert "compare" not in {s.name for s in demo_stages(paths, DemoSettings(compare_sentences=0))}


def test_table_reads_the_comparison(tmp_path: Path) -> None:
    paths = DemoPaths(tmp_path)
    assert comparison_table(paths) is None  # before the stage ran
    paths.compare.mkdir()
    rows = [{"model": "demo", "wav": "demo.wav", "vocoder": "student", "text_wer": 0.84, "lip_f1_speech": 0.86},
            {"model": "pretrained", "wav": "pretrained.wav", "vocoder": "student", "text_wer": 0.25, "lip_f1_speech": 0.915},
            {"model": "flite", "wav": "flite.wav", "vocoder": "", "text_wer": 0.08, "lip_f1_speech": None}]
    (paths.compare / COMPARE_FILE).write_text(json.dumps({"sentences": ["a.", "b."], "set": "test", "rows": rows}))
    console = Console(width=200, record=True)
    console.print(comparison_table(paths))
    text = " ".join(console.export_text().split())
    assert "0.84" in text and "0.25" in text and "0.92" in text and "NN/pretrained.wav" in text
    assert "same 2 sentences of the frozen test set" in text


def test_demo_run_names_its_model_for_later_use(tmp_path: Path) -> None:
    """Every stage recorded as done: the run prints the table and how to use the demo's model."""
    from typer.testing import CliRunner

    from avflow_cli.cli.main import app

    out = tmp_path / "demo_out"
    paths = DemoPaths(out)
    settings = DemoSettings()
    out.mkdir()
    done = {}
    for stage in demo_stages(paths, settings):
        stage.output.parent.mkdir(parents=True, exist_ok=True)
        if not stage.output.exists():
            stage.output.write_text("{}")
        done[stage.name] = stage.args
    (out / "demo-stages.json").write_text(json.dumps(done))
    rows = [{"model": "demo", "wav": "demo.wav", "vocoder": "student", "text_wer": 0.9, "lip_f1_speech": 0.5}]
    (paths.compare / COMPARE_FILE).write_text(json.dumps({"sentences": ["a."], "set": "test", "rows": rows}))
    result = CliRunner().invoke(app, ["demo", "--out", str(out)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "skipped" in result.output and "0.90" in result.output
    flat = " ".join(result.output.split())
    assert f"--model {paths.models / 'avflow'}" in flat and "AVFLOW_MODEL=" in flat and "shipped model (pretrained)" in flat


@pytest.mark.slow
def test_compare_writes_both_models_side_by_side(tmp_path: Path, tiny_avatar_model: Path) -> None:
    """The real stage on one sentence: a random tiny model against the shipped one (about 20 s)."""
    import soundfile as sf

    from avflow_cli.demo import compare_with_shipped

    if shutil.which("flite") is None:
        pytest.skip("the probe sentences are spoken by flite")
    result = compare_with_shipped(tiny_avatar_model, tmp_path / "compare", sentences=1)
    rows = {row["model"]: row for row in result["rows"]}
    assert rows["pretrained"]["text_wer"] < rows["demo"]["text_wer"]
    assert rows["pretrained"]["lip_f1_speech"] > rows["demo"]["lip_f1_speech"]
    for name in ("demo.wav", "pretrained.wav", "flite.wav"):
        assert sf.info(tmp_path / "compare" / "01" / name).duration > 0.5
    assert json.loads((tmp_path / "compare" / COMPARE_FILE).read_text()) == json.loads(json.dumps(result))
