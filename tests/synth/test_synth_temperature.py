"""Sampling temperature (and, with it, the token gain: tests/synth/test_synth_token_gain.py): the
model config's by default, one setting for offline and streaming, recorded in meta.json,
out-of-range values refused in one line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from avflow_cli.cli.main import app
from avflow_cli.errors import AvflowError
from avflow_cli.models.config import AVFlowConfig

runner = CliRunner()


def _with_temperature(model_dir: Path, tmp_path: Path, temperature: float) -> Path:
    """A copy of ``model_dir``'s family whose config.json says ``model.temperature``."""
    import shutil

    root = tmp_path / "family"
    shutil.copytree(model_dir.parent, root)
    cfg_path = root / model_dir.name / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["model"]["temperature"] = temperature
    cfg_path.write_text(json.dumps(cfg))
    return root / model_dir.name


def test_config_temperature_is_the_default_and_zero_ignores_the_seed(tiny_model: Path, tmp_path: Path) -> None:
    from avflow_cli.synth import Synthesizer

    tokens = np.eye(29, dtype=np.float32)[np.arange(40) % 29]  # (40, 29)
    cold = Synthesizer(_with_temperature(tiny_model, tmp_path, 0.0), vocoder="griffinlim", device="cpu")
    assert cold.temperature == 0.0
    a = cold.generate_motion(tokens, seed=0).mel
    b = cold.generate_motion(tokens, seed=1).mel
    np.testing.assert_array_equal(a, b)  # no noise: the seed cannot matter
    warm = Synthesizer(_with_temperature(tiny_model, tmp_path / "w", 0.0), vocoder="griffinlim", device="cpu",
                       temperature=1.0)  # the argument overrides the config
    assert not np.allclose(warm.generate_motion(tokens, seed=0).mel, warm.generate_motion(tokens, seed=1).mel)


# the sampling settings a Synthesizer takes over the model's own: (name, a value, another value)
SETTINGS = [("temperature", 0.5, 0.7), ("token_gain", 1.5, 1.7)]


@pytest.mark.parametrize("name, value, _", SETTINGS)
def test_stream_uses_the_same_setting_as_offline(tiny_model: Path, name: str, value: float, _: float) -> None:
    from avflow_cli.synth import Synthesizer

    synth = Synthesizer(tiny_model, vocoder="griffinlim", device="cpu", **{name: value})
    tokens = np.eye(29, dtype=np.float32)[np.arange(48) % 29] * 6.0  # far from the tokens' mean: the gain tells
    offline = synth.generate_motion(tokens, seed=3).mel
    streamed = np.concatenate([c.mel for c in synth.stream(tokens=tokens, seed=3, schedule="exact")])
    np.testing.assert_allclose(streamed, offline, atol=1e-5)


@pytest.mark.parametrize("name, value, other", SETTINGS)
def test_meta_records_the_setting_and_resume_redoes_other_values(tiny_model: Path, tmp_path: Path, name: str,
                                                                 value: float, other: float) -> None:
    from avflow_cli.synth import Synthesizer

    synth = Synthesizer(tiny_model, vocoder="hifigan", device="cpu", **{name: value})  # copes with untrained mels
    out = synth.save(synth.synthesize("hi", seed=0), tmp_path / "out", preview=False)
    assert json.loads((out / "meta.json").read_text())[name] == value
    assert synth.is_done(out, "hi", seed=0)
    assert not Synthesizer(tiny_model, vocoder="griffinlim", device="cpu", **{name: other}).is_done(out, "hi", seed=0)
    assert not Synthesizer(tiny_model, vocoder="griffinlim", device="cpu").is_done(out, "hi", seed=0)  # the model's own


def test_resume_redoes_outputs_spoken_at_another_pace(tiny_model: Path, tmp_path: Path) -> None:
    """A text-to-tokens model calibrated since (model.duration_scale) speaks at another pace: redone."""
    from avflow_cli.synth import Synthesizer

    synth = Synthesizer(tiny_model, vocoder="hifigan", device="cpu")  # copes with untrained mels
    out = synth.save(synth.synthesize("hi", seed=0), tmp_path / "out", preview=False)
    assert json.loads((out / "meta.json").read_text())["duration_scale"] == synth.t2t.config.duration_scale
    assert synth.is_done(out, "hi", seed=0)
    synth.t2t.config.duration_scale = 1.15
    assert not synth.is_done(out, "hi", seed=0)


@pytest.mark.parametrize("bad", ["-0.1", "2.5", "nan"])
def test_cli_temperature_out_of_range_is_one_line(tiny_model: Path, tmp_path: Path, bad: str) -> None:
    result = runner.invoke(app, ["synth", "hi", "-o", str(tmp_path / "out"), "--model", str(tiny_model),
                                 "--vocoder", "griffinlim", "--device", "cpu", "--temperature", bad])
    assert result.exit_code == 2, result.output
    assert "--temperature must be in [0, 2]" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def test_config_refuses_a_temperature_out_of_range() -> None:
    with pytest.raises(AvflowError, match="model.temperature"):
        AVFlowConfig(temperature=3.0).validate()
    assert AVFlowConfig().temperature == 1.0  # older config.json files keep the plain flow
