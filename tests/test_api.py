"""``import avflow``: the documented Python API re-exports avflow_cli's, without loading torch up front."""

from __future__ import annotations

import subprocess
import sys

import pytest


def test_import_avflow_is_light_and_names_resolve_lazily() -> None:
    code = (
        "import sys, avflow\n"
        "light = 'torch' not in sys.modules\n"
        "from avflow_cli.synth import Synthesizer\n"
        "from avflow_cli.models.registry import load_model\n"
        "assert avflow.Synthesizer is Synthesizer and avflow.load_model is load_model\n"
        "print('LIGHT' if light else 'HEAVY')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-1] == "LIGHT"


def test_public_names_version_and_errors() -> None:
    import avflow
    import avflow_cli
    from avflow_cli import constants as K
    from avflow_cli.errors import AvflowError
    from avflow_cli.synth import SynthesisResult

    assert avflow.__version__ == avflow_cli.__version__
    assert avflow.FPS == K.FPS and avflow.SAMPLE_RATE == K.SAMPLE_RATE
    assert avflow.AvflowError is AvflowError and avflow.SynthesisResult is SynthesisResult
    assert {"Synthesizer", "SynthesisResult", "load_model", "AvflowError"} <= set(avflow.__all__) <= set(dir(avflow))
    assert all(getattr(avflow, name) is not None for name in avflow.__all__)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        avflow.nope  # noqa: B018


def test_missing_model_is_a_clear_error(tmp_path) -> None:
    import avflow

    with pytest.raises(avflow.AvflowError, match="no AV-Flow model here"):
        avflow.Synthesizer(tmp_path / "no-model")
