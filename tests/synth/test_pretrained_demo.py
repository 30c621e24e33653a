"""`--model pretrained` and the default model: the demo model shipped in the package is used until
`make demo` has built one, so `avflow synth "hello" -o out/` works right after install."""

from __future__ import annotations

from pathlib import Path

import pytest

from avflow_cli import constants as K
from avflow_cli import synth as synth_mod
from avflow_cli.errors import AvflowError


def test_default_model_falls_back_to_the_shipped_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     tiny_avatar_model: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no demo_out/ here
    monkeypatch.setattr(synth_mod, "PRETRAINED_DIR", tiny_avatar_model)
    assert synth_mod.resolve_model_dir(synth_mod.DEMO_MODEL_DIR) == tiny_avatar_model
    assert synth_mod.resolve_model_dir(K.PRETRAINED_MODEL) == tiny_avatar_model
    built = tmp_path / K.DEMO_MODEL_DIR
    built.mkdir(parents=True)
    (built / "config.json").write_text("{}")
    assert synth_mod.resolve_model_dir(synth_mod.DEMO_MODEL_DIR) == synth_mod.DEMO_MODEL_DIR  # make demo's wins
    other = tmp_path / "mine"
    assert synth_mod.resolve_model_dir(other) == other  # an explicit path is never replaced


def test_synthesizer_loads_the_fallback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_avatar_model: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(synth_mod, "PRETRAINED_DIR", tiny_avatar_model)
    synth = synth_mod.Synthesizer(device="cpu")
    assert synth.model_dir == tiny_avatar_model and synth.t2t_dir == (tiny_avatar_model.parent / "t2t").resolve()


def test_pretrained_missing_is_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(synth_mod, "PRETRAINED_DIR", tmp_path / "absent")
    with pytest.raises(AvflowError, match="no pretrained demo model"):
        synth_mod.resolve_model_dir(K.PRETRAINED_MODEL)
