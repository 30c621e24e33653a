"""Presets, --set overrides, TOML/YAML files, JSON round trip."""

from __future__ import annotations

from pathlib import Path

import pytest

from avflow_cli.errors import AvflowError
from avflow_cli.models.config import (
    AVFlowConfig,
    TrainConfig,
    avflow_preset,
    dataclass_from_dict,
    parse_set_options,
    resolve_configs,
    to_json_dict,
)


def test_overrides_dotted_bare_and_types() -> None:
    m, t = avflow_preset("tiny")
    m, t, touched = resolve_configs(m, t, None, parse_set_options(["model.d_model=64", "lr=3e-4", "bf16=true", "betas=0.8,0.9"]))
    assert (m.d_model, t.lr, t.bf16, t.betas) == (64, 3e-4, True, (0.8, 0.9))
    assert {"model.d_model", "train.lr"} <= touched


def test_bad_overrides_are_clear() -> None:
    m, t = avflow_preset("tiny")
    with pytest.raises(AvflowError, match="no such setting"):
        resolve_configs(m, t, None, {"model.nope": 1})
    with pytest.raises(AvflowError, match="expected true/false"):
        resolve_configs(m, t, None, {"train.bf16": "maybe"})
    with pytest.raises(AvflowError, match="fusion"):
        resolve_configs(m, t, None, {"fusion": "weird"})
    with pytest.raises(AvflowError, match="key=value"):
        parse_set_options(["d_model"])
    with pytest.raises(AvflowError, match="unknown preset"):
        avflow_preset("huge")


def test_toml_and_yaml_files(tmp_path: Path) -> None:
    (tmp_path / "c.toml").write_text("[model]\nfusion = 'cascade'\ndepth = 2\n[train]\nbatch_size = 3\n")
    (tmp_path / "c.yaml").write_text("model:\n  fusion: shared\ntrain:\n  steps: 7\n")
    m, t, _ = resolve_configs(*avflow_preset("tiny"), tmp_path / "c.toml", {"depth": "3"})
    assert (m.fusion, m.depth, t.batch_size) == ("cascade", 3, 3)  # the CLI wins over the file
    m, t, _ = resolve_configs(*avflow_preset("tiny"), tmp_path / "c.yaml")
    assert (m.fusion, t.steps) == ("shared", 7)
    with pytest.raises(AvflowError, match="not found"):
        resolve_configs(*avflow_preset("tiny"), tmp_path / "none.toml")


def test_json_round_trip() -> None:
    m, t = avflow_preset("release")
    assert dataclass_from_dict(AVFlowConfig, to_json_dict(m), "x") == m
    assert dataclass_from_dict(TrainConfig, to_json_dict(t), "x") == t
    with pytest.raises(AvflowError, match="unknown config fields"):
        dataclass_from_dict(AVFlowConfig, {**to_json_dict(m), "future": 1}, "x")


def test_packaged_configs_resolve_by_name() -> None:
    from avflow_cli.models.config import packaged_configs

    assert {"dyadic", "release_dyadic"} <= set(packaged_configs())
    m, t, touched = resolve_configs(*avflow_preset("tiny"), "dyadic")
    assert (m.participant_tokens, m.participant_visual_dim, m.guidance_dropout) == (True, 56, 0.3)
    assert "model.participant_visual_dim" in touched
    m, _, _ = resolve_configs(*avflow_preset("release"), Path("release_dyadic"), {"guidance_dropout": "0.1"})
    assert (m.participant_visual_dim, m.guidance_dropout) == (58, 0.1)  # --set still wins
    with pytest.raises(AvflowError, match=r"no packaged config of that name \(packaged: dyadic, "):
        resolve_configs(*avflow_preset("tiny"), "dyadc")


def test_t2t_presets_are_field_dicts_like_the_avflow_presets() -> None:
    from avflow_cli.models.text2tokens.config import PRESETS, T2TConfig, preset

    for name, changes in PRESETS.items():
        cfg = preset(name)
        assert cfg.preset == name and all(getattr(cfg, k) == v for k, v in changes.items())
        assert dataclass_from_dict(T2TConfig, to_json_dict(cfg), "x") == cfg  # tuples survive JSON
