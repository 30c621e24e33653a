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


def test_file_system_refusals_are_one_line(tmp_path, monkeypatch) -> None:
    long_name = tmp_path / ("x" * 300)  # longer than any file system allows (ENAMETOOLONG)
    result = runner.invoke(app, ["demo", "corpus", "-o", str(long_name), "--minutes", "0.2"])
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "name too long" in errors[0].lower() and "Traceback" not in result.output
    monkeypatch.setenv("AVFLOW_DEBUG", "1")  # developers get the traceback
    result = runner.invoke(app, ["demo", "corpus", "-o", str(long_name), "--minutes", "0.2"])
    assert isinstance(result.exception, OSError)
