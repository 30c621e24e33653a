"""The root CLI: help, version, and one-line user errors."""

from __future__ import annotations

import subprocess
import sys

import pytest
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


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["synth", "--help"], ["train", "--help"]])
def test_help_and_version_do_not_import_torch(args: list[str]) -> None:
    """Help must start instantly: torch (seconds to import) loads only when a command runs."""
    code = (
        "import sys\n"
        "from avflow_cli.cli.main import app\n"
        f"try:\n    app({args!r}, prog_name='avflow')\n"
        "except SystemExit as e:\n    assert not e.code, e.code\n"
        "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "NO-TORCH"
