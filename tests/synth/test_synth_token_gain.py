"""Token gain (model.token_gain): the avatar's normalised tokens scaled before sampling; guidance
untouched; the model's own by default; out-of-range values refused in one line. Streaming equal to
offline and meta.json/resume: with the temperature's, tests/synth/test_synth_temperature.py."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from avflow_cli.cli.main import app
from avflow_cli.errors import AvflowError
from avflow_cli.models.config import AVFlowConfig
from avflow_cli.models.registry import set_model_field

runner = CliRunner()
TOKENS = np.eye(29, dtype=np.float32)[np.arange(48) % 29] * 6.0  # (48, 29): far from the tokens' mean


def _with_gain(model_dir: Path, tmp_path: Path, gain: float) -> Path:
    """A copy of ``model_dir``'s family whose config.json says ``model.token_gain``."""
    root = tmp_path / "family"
    shutil.copytree(model_dir.parent, root)
    set_model_field(root / model_dir.name, "token_gain", gain)
    return root / model_dir.name


def test_build_cond_scales_the_avatars_tokens_and_nothing_else(tiny_model: Path) -> None:
    from avflow_cli.models.inference import build_cond
    from avflow_cli.synth import Synthesizer

    model = Synthesizer(tiny_model, vocoder="griffinlim", device="cpu").model
    plain = build_cond(model, TOKENS, None, None)[0].numpy()  # (T, C)
    model.config.token_gain = 2.5
    loud = build_cond(model, TOKENS, None, None)[0].numpy()
    d = model.config.token_dim
    np.testing.assert_allclose(loud[:, :d], 2.5 * plain[:, :d], rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(loud[:, d:], plain[:, d:])  # participant guidance ("none" = zeros) unscaled
    assert np.abs(plain[:, :d]).max() > 0.5  # the check above compared real values, not zeros


def test_config_gain_is_the_default_and_the_argument_overrides_it(tiny_model: Path, tmp_path: Path) -> None:
    from avflow_cli.synth import Synthesizer

    plain = Synthesizer(tiny_model, vocoder="griffinlim", device="cpu")
    assert plain.token_gain == 1.0  # configs written before the field speak as trained
    stored = Synthesizer(_with_gain(tiny_model, tmp_path, 2.0), vocoder="griffinlim", device="cpu")
    assert stored.token_gain == 2.0
    a, b = plain.generate_motion(TOKENS, seed=0).mel, stored.generate_motion(TOKENS, seed=0).mel
    assert not np.allclose(a, b, atol=1e-4)  # the gain reaches the network
    back = Synthesizer(_with_gain(tiny_model, tmp_path / "o", 2.0), vocoder="griffinlim", device="cpu", token_gain=1.0)
    np.testing.assert_allclose(back.generate_motion(TOKENS, seed=0).mel, a, atol=1e-5)  # override = as trained


def test_output_from_before_the_field_counts_as_gain_one(tiny_model: Path, tmp_path: Path) -> None:
    from avflow_cli.synth import Synthesizer

    synth = Synthesizer(tiny_model, vocoder="hifigan", device="cpu")
    out = synth.save(synth.synthesize("hi", seed=0), tmp_path / "out", preview=False)
    meta = json.loads((out / "meta.json").read_text())
    del meta["token_gain"]
    (out / "meta.json").write_text(json.dumps(meta))
    assert synth.is_done(out, "hi", seed=0)
    assert not Synthesizer(tiny_model, vocoder="griffinlim", device="cpu", token_gain=2.0).is_done(out, "hi", seed=0)


@pytest.mark.parametrize("bad", ["0", "-1", "4.5", "nan"])
def test_cli_gain_out_of_range_is_one_line(tiny_model: Path, tmp_path: Path, bad: str) -> None:
    result = runner.invoke(app, ["synth", "hi", "-o", str(tmp_path / "out"), "--model", str(tiny_model),
                                 "--vocoder", "griffinlim", "--device", "cpu", "--token-gain", bad])
    assert result.exit_code == 2, result.output
    assert "--token-gain must be in (0, 4]" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def test_cli_synth_speaks_with_the_gain_asked_for(tiny_model: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["synth", "hi", "-o", str(tmp_path / "out"), "--model", str(tiny_model),
                                 "--vocoder", "hifigan", "--device", "cpu", "--no-preview", "--token-gain", "1.25"])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "out" / "meta.json").read_text())["token_gain"] == 1.25


def test_config_refuses_a_gain_out_of_range_and_resume_may_change_it() -> None:
    from avflow_cli.train.common import NON_ARCHITECTURE_FIELDS

    with pytest.raises(AvflowError, match="model.token_gain"):
        AVFlowConfig(token_gain=0.0).validate()
    assert AVFlowConfig().token_gain == 1.0
    assert "token_gain" in NON_ARCHITECTURE_FIELDS  # a sampling setting: the weights do not depend on it


def test_cli_converse_refuses_a_gain_out_of_range_before_reading_anything(tmp_path: Path) -> None:
    result = runner.invoke(app, ["converse", str(tmp_path / "dialogue.toml"), "-o", str(tmp_path / "out"),
                                 "--token-gain", "9"])
    assert result.exit_code == 2, result.output
    assert "--token-gain must be in (0, 4]" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "out").exists()
