"""The root CLI: help, version, and one-line user errors."""

from __future__ import annotations

from typer.testing import CliRunner

from avflow_cli import __version__
from avflow_cli.cli.main import app

runner = CliRunner()


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert __version__ in result.output


def test_help_lists_groups() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for group in ("prep", "data", "train", "synth", "eval", "demo", "import", "doctor"):
        assert group in result.output
