"""Model directories (save/load with clear errors) and generate() on any length."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from avflow_cli import load_model
from avflow_cli.errors import AvflowError
from avflow_cli.models.avflow import AVFlow
from avflow_cli.models.config import AVFlowConfig
from avflow_cli.models.inference import generate
from avflow_cli.models.normalize import Normalizer
from avflow_cli.models.registry import save_model_dir


def _save(tmp_path: Path, **kw) -> Path:
    cfg = AVFlowConfig(face_dim=6, d_model=16, hidden_dim=16, heads=2, depth=1, **kw)
    model = AVFlow(cfg)
    dims = {"face": 6, "head": 8, "mel": 80, "tokens": 29, "p_tokens": 29, "p_smirk": 56}
    norm = Normalizer("stats", {k: (np.full(d, 1.0), np.full(d, 2.0)) for k, d in dims.items()})
    return save_model_dir(tmp_path / "m", "avflow", cfg, model.state_dict(), norm.to_json(), preset="tiny",
                          components={"head_vae": "../vae"})


def test_save_load_and_generate_any_length(tmp_path: Path) -> None:
    d = _save(tmp_path)
    model = load_model(d)
    assert model.config.face_dim == 6 and model.normalizer.kind == "stats" and not model.training
    assert model.components["head_vae"] == (tmp_path / "vae").resolve()
    for T in (1, 37, 700):
        out = generate(model, np.zeros((T, 29), np.float32), steps=2, num_samples=2)
        assert out["face"].shape == (2, T, 6) and out["head"].shape == (2, T, 8) and out["mel"].shape == (2, T, 80)
    a = generate(model, np.ones((20, 29)), steps=2, seed=3)
    b = generate(model, np.ones((20, 29)), steps=2, seed=3)
    np.testing.assert_array_equal(a["mel"], b["mel"])
    with warnings.catch_warnings():  # emulated bf16 on AVX2 CPUs warns; the numbers are what matter here
        warnings.simplefilter("ignore")
        bf = generate(model, np.ones((20, 29)), steps=2, seed=3, bf16=True)
    assert np.abs(bf["mel"] - a["mel"]).max() < 0.2 * np.abs(a["mel"]).max()


def test_guidance_defaults_to_zero_and_is_checked(tmp_path: Path) -> None:
    model = load_model(_save(tmp_path, participant_tokens=True, participant_visual_dim=56))
    out = generate(model, np.zeros((10, 29)), steps=1)
    assert out["mel"].shape == (1, 10, 80)
    generate(model, np.zeros((10, 29)), p_tokens=np.zeros((10, 29)), p_smirk=np.zeros((4, 56)), steps=1)
    with pytest.raises(AvflowError, match="p_smirk must be"):
        generate(model, np.zeros((10, 29)), p_smirk=np.zeros((10, 3)), steps=1)
    with pytest.raises(AvflowError, match="tokens must be"):
        generate(model, np.zeros((10, 28)), steps=1)


def test_load_errors(tmp_path: Path) -> None:
    with pytest.raises(AvflowError, match="model directory not found"):
        load_model(tmp_path / "nothing")
    d = _save(tmp_path)
    (d / "model.safetensors").unlink()
    with pytest.raises(AvflowError, match="no weights"):
        load_model(d)
    d = _save(tmp_path)
    obj = json.loads((d / "config.json").read_text())
    obj["model"]["depth"] = 2
    (d / "config.json").write_text(json.dumps(obj))
    with pytest.raises(AvflowError, match="different architecture"):
        load_model(d)
    obj["format_version"] = 99
    (d / "config.json").write_text(json.dumps(obj))
    with pytest.raises(AvflowError, match="newer"):
        load_model(d)
    d = _save(tmp_path)
    with pytest.raises(AvflowError, match="expected 'headvae'"):
        load_model(d, kind="headvae")


def test_registry_is_a_leaf_of_models_and_loads_every_kind() -> None:
    """Network modules import the registry, never the reverse: no import cycle between them."""
    import subprocess
    import sys

    code = ("import sys, avflow_cli.models.registry as r\n"
            "print(sorted(m for m in sys.modules if m.startswith(('avflow_cli.models.', 'avflow_cli.data.'))))\n"
            "print(sorted(r.KIND_CLASSES))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True).stdout
    loaded, kinds = out.splitlines()
    assert loaded == "['avflow_cli.models.config', 'avflow_cli.models.registry']"
    assert kinds == "['avflow', 'headvae', 't2t']"


def test_bf16_sampling_casts_each_weight_once(tmp_path: Path) -> None:
    """One autocast region spans every Euler step and keeps its bf16 weight copies (no inference_mode)."""
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode

    model = load_model(_save(tmp_path))
    qkv_shape = tuple(model.visual_blocks[0].attn.qkv.weight.shape)  # (3D, D): the qkv and both AdaLN weights

    class CastCounter(TorchDispatchMode):
        casts = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
            if func is torch.ops.aten._to_copy.default and tuple(args[0].shape) == qkv_shape:
                CastCounter.casts += 1
            return func(*args, **(kwargs or {}))

    with warnings.catch_warnings(), CastCounter():
        warnings.simplefilter("ignore")  # emulated bf16 on AVX2 CPUs warns
        generate(model, np.ones((20, 29)), steps=4, bf16=True)
    assert CastCounter.casts == 6  # 3 such weights in each of the 2 blocks, cast once for all 4 steps
