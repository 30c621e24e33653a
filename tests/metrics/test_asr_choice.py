"""Choosing the recogniser of every WER (`avflow eval --asr-backend`, the probe's `--asr`): a typo or a
missing Whisper folder is one line before anything runs."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from avflow_cli.cli.main import app
from avflow_cli.errors import AvflowError, MissingCheckpointError
from avflow_cli.evaluate import EvalSettings


def test_eval_settings_check_the_recogniser(tmp_path: Path) -> None:
    with pytest.raises(AvflowError, match="unknown ASR backend 'sphinx'"):
        EvalSettings(asr_backend="sphinx")
    with pytest.raises(MissingCheckpointError, match="tokenizer.json"):
        EvalSettings(asr_backend=f"whisper:{tmp_path}")
    assert EvalSettings(asr_backend="sphinx", wer=False).asr_backend == "sphinx"  # no WER: not used, not checked
    assert EvalSettings(asr_backend="pocketsphinx").asr_backend == "pocketsphinx"


def test_eval_cli_refuses_a_missing_whisper_folder(synthetic_shards: Path, tmp_path: Path) -> None:
    (tmp_path / "gen").mkdir()
    res = CliRunner().invoke(app, ["eval", "--from-dir", str(tmp_path / "gen"), "--data", str(synthetic_shards),
                                   "--asr-backend", f"whisper:{tmp_path / 'nowhere'}", "--out", str(tmp_path / "out")])
    assert res.exit_code == 2 and "nowhere" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "out").exists()


def test_probe_refuses_an_unknown_recogniser_first(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from avflow_cli.metrics import probe

    with pytest.raises(SystemExit) as exit_info:
        probe.main([str(tmp_path / "absent"), "--asr", "whisperx"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "unknown ASR backend 'whisperx'" in err and "\n" not in err
