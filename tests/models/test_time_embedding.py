"""Flow-time embedding: scaled t for our presets, t as is for the release and for older configs."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from avflow_cli.models.avflow import AVFlow
from avflow_cli.models.config import AVFlowConfig, avflow_preset
from avflow_cli.models.registry import load_model, save_model_dir


def _varying_features(model: AVFlow) -> int:
    """How many of the Fourier features change by more than 0.1 as t runs over [0, 1]."""
    feats = model.time_embed.features(torch.linspace(0, 1, 257))  # (257, D/4)
    return int(((feats.amax(0) - feats.amin(0)) > 0.1).sum())


def test_presets_scale_time_so_most_features_vary() -> None:
    for name in ("tiny", "base"):
        cfg, _ = avflow_preset(name)
        model = AVFlow(cfg)
        n = model.time_embed.n_freq * 2
        assert _varying_features(model) >= 0.8 * n, (name, _varying_features(model), n)
    release = AVFlow(avflow_preset("release")[0])
    assert release.config.time_scale == 1.0  # the authors' weights expect t as is
    assert _varying_features(release) < 0.3 * release.time_embed.n_freq * 2


def test_config_without_time_scale_loads_with_the_old_behaviour(tmp_path: Path) -> None:
    cfg = AVFlowConfig(face_dim=4, d_model=16, hidden_dim=16, heads=2, depth=1, time_scale=1.0)
    model = AVFlow(cfg)
    save_model_dir(tmp_path / "m", "avflow", cfg, model.state_dict())
    path = tmp_path / "m" / "config.json"
    obj = json.loads(path.read_text())
    del obj["model"]["time_scale"]  # a config.json written before the field existed
    path.write_text(json.dumps(obj))
    loaded = load_model(tmp_path / "m")
    assert loaded.config.time_scale == 1.0
    t = torch.tensor([0.0, 0.37, 1.0])
    torch.testing.assert_close(loaded.time_embed(t), model.time_embed(t))
    scaled = AVFlowConfig(face_dim=4, d_model=16, hidden_dim=16, heads=2, depth=1, time_scale=1000.0)
    save_model_dir(tmp_path / "s", "avflow", scaled, AVFlow(scaled).state_dict())
    assert load_model(tmp_path / "s").config.time_scale == 1000.0
