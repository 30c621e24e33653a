"""Sampling steps of ``Synthesizer.synthesize``: the model config's count by default, < 1 rejected."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from avflow_cli.cli.main import app
from avflow_cli.errors import AvflowError
from avflow_cli.models.avflow import AVFlow
from avflow_cli.models.config import AVFlowConfig
from avflow_cli.models.normalize import Normalizer, model_streams
from avflow_cli.models.registry import save_model_dir
from avflow_cli.models.text2tokens.config import preset as t2t_preset
from avflow_cli.models.text2tokens.io import save_t2t
from avflow_cli.models.text2tokens.model import TextToTokens

runner = CliRunner()


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Randomly initialised tiny AV-Flow (config steps = 3) and text-to-tokens models, side by side."""
    root = tmp_path_factory.mktemp("synth_steps")
    torch.manual_seed(0)
    cfg = AVFlowConfig(face_dim=4, d_model=16, hidden_dim=16, heads=2, depth=1, steps=3)
    model = AVFlow(cfg)
    dims = {"face": 4, "head": cfg.head_dim, "mel": cfg.mel_dim, "tokens": cfg.token_dim}
    norm = Normalizer.identity({k: dims[k] for k in model_streams(cfg)})
    save_model_dir(root / "avflow", "avflow", cfg, model.state_dict(), norm.to_json(), preset="tiny")
    save_t2t(root / "t2t", TextToTokens(t2t_preset("tiny")))
    return root


def test_steps_default_to_the_model_config(model_dirs: Path) -> None:
    from avflow_cli.synth import Synthesizer

    synth = Synthesizer(model_dirs / "avflow", vocoder="griffinlim", device="cpu")
    calls: list[float] = []
    handle = synth.model.time_embed.register_forward_hook(lambda m, i, o: calls.append(float(i[0][0])))
    result = synth.synthesize("hi", seed=0)
    assert result.steps == 3 and len(calls) == 3  # the config's 3, not a global 8
    calls.clear()
    assert synth.synthesize("hi", seed=0, steps=5).steps == 5 and len(calls) == 5
    handle.remove()
    for bad in (0, -2):
        with pytest.raises(AvflowError, match="at least 1"):
            synth.synthesize("hi", steps=bad)


def test_cli_steps_zero_is_a_one_line_error(model_dirs: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = runner.invoke(app, ["synth", "hi", "-o", str(out), "--model", str(model_dirs / "avflow"),
                                 "--vocoder", "griffinlim", "--device", "cpu", "--steps", "0"])
    assert result.exit_code == 2, result.output
    assert "--steps must be at least 1" in result.output and "Traceback" not in result.output
    assert not out.exists()


def test_generate_rejects_zero_steps(model_dirs: Path) -> None:
    from avflow_cli.models.inference import generate
    from avflow_cli.models.registry import load_model

    model = load_model(model_dirs / "avflow")
    with pytest.raises(AvflowError, match="steps"):
        generate(model, np.zeros((5, 29), np.float32), steps=0)
