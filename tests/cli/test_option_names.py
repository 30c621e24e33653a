"""One name per concept: a shard folder is --data, -m is --model. The old spellings keep working
for a release with a one-line deprecation note."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from avflow_cli.cli.main import app


def _lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.strip()]


def test_encode_head_takes_data_and_the_old_positional_with_a_note(tmp_path: Path) -> None:
    missing = tmp_path / "no-shards"
    new = CliRunner().invoke(app, ["prep", "encode-head", "--data", str(missing), "--head-vae", str(tmp_path)])
    old = CliRunner().invoke(app, ["prep", "encode-head", str(missing), "--head-vae", str(tmp_path)])
    assert new.exit_code == old.exit_code == 2
    assert _lines(new.output)[-1] == _lines(old.output)[-1] and str(missing) in _lines(new.output)[-1]
    assert "deprecated" not in new.output
    assert _lines(old.output)[0] == "note: a positional SHARDS is deprecated; use --data SHARDS"
    none = CliRunner().invoke(app, ["prep", "encode-head", "--head-vae", str(tmp_path)])
    assert none.exit_code == 2 and "give the shard directory to encode: --data SHARDS" in none.output


def test_demo_corpus_minutes_is_no_longer_m(tmp_path: Path) -> None:
    """-m means --model in synth, converse and serve; the corpus spells --minutes out (old -m noted)."""
    new = CliRunner().invoke(app, ["demo", "corpus", "-o", str(tmp_path / "c"), "--minutes", "99999"])
    old = CliRunner().invoke(app, ["demo", "corpus", "-o", str(tmp_path / "c"), "-m", "99999"])
    assert new.exit_code == old.exit_code == 2 and "--minutes must be between" in new.output
    assert _lines(old.output)[0] == "note: -m is deprecated; use --minutes" and _lines(old.output)[1] == _lines(new.output)[0]
    help_text = CliRunner().invoke(app, ["demo", "corpus", "--help"]).output
    assert "--minutes" in help_text and " -m " not in help_text
