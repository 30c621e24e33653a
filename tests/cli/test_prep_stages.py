"""`prep shards` and `prep all` share one declaration of their options (cli/prep_stages.SHARD_PARAMS)."""

from __future__ import annotations

from pathlib import Path

import typer
from typer.testing import CliRunner

from avflow_cli.cli.main import app
from avflow_cli.cli.prep import app as prep_app
from avflow_cli.cli.prep_stages import SHARD_PARAMS

runner = CliRunner()


def _options(name: str) -> dict[str, object]:
    """Option name → default of one `prep` command, as Click sees it."""
    command = typer.main.get_command(prep_app).commands[name]
    return {p.name: p.default for p in command.params}


def test_shared_options_reach_both_commands() -> None:
    shards, all_ = _options("shards"), _options("all")
    shared = {p.name for p in SHARD_PARAMS}
    assert shared <= set(shards) and shared <= set(all_)
    assert {k: shards[k] for k in shared} == {k: all_[k] for k in shared}
    assert set(shards) - shared == {"src", "out", "shard_index"}
    assert set(all_) - shared == {"src", "out", "nonspeech", "aggressiveness"}
    assert shards["max_clip_seconds"] == 60.0 and shards["force"] is False


def test_shared_option_values_are_used(tmp_path: Path) -> None:
    """A bad shared option reaches ShardOptions.validate in either command: one line, exit 2, nothing written."""
    for command in ("shards", "all"):
        out = tmp_path / command
        result = runner.invoke(app, ["prep", command, str(tmp_path), str(out), "--val-fraction", "2"])
        assert result.exit_code == 2, result.output
        assert "--val-fraction" in result.output and "Traceback" not in result.output
        assert not out.exists()
