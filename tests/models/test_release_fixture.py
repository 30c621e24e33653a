"""The authors' released format loads strictly through our converter and reproduces their outputs.

The fixture was made once by building the authors' own classes (facebookresearch/av_flow,
models/diffusion.py and models/vae.py) with small dims and seeded random weights; it holds
only data: their checkpoint dicts and an input with its output.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from avflow_cli.errors import AvflowError
from avflow_cli.models.avflow import AVFlow
from avflow_cli.models.convert_release import (
    convert_avflow_checkpoint,
    convert_avflow_state,
    convert_headvae_checkpoint,
    convert_headvae_state,
    rename_headvae_key,
    write_release_model_dirs,
)
from avflow_cli.models.headvae import HeadVAE
from avflow_cli.models.registry import load_head_vae, load_model

FIX = Path(__file__).parents[1] / "fixtures" / "release"


def test_avflow_release_checkpoint_matches_their_output() -> None:
    cfg, state = convert_avflow_checkpoint(FIX / "av_flow_small.pt")
    assert (cfg.window_left, cfg.window_right, cfg.steps, cfg.normalization) == (16, 8, 16, "release")
    model = AVFlow(cfg)
    model.load_state_dict(state, strict=True)
    io = np.load(FIX / "av_flow_small_io.npz")
    with torch.no_grad():
        v = model.eval()(torch.from_numpy(io["x"]), torch.from_numpy(io["t"]), torch.from_numpy(io["tokens"]))
    np.testing.assert_allclose(v.numpy(), io["v"], atol=1e-5, rtol=1e-5)


def test_headvae_release_checkpoint_matches_their_output() -> None:
    cfg, state = convert_headvae_checkpoint(FIX / "head_vae_small.pt", FIX)
    vae = HeadVAE(cfg)
    vae.load_state_dict(state, strict=True)
    vae.eval()
    io = np.load(FIX / "head_vae_small_io.npz")
    np.testing.assert_allclose(vae.encode_mean(io["pose"]), io["mu"], atol=1e-5)
    with torch.no_grad():
        dec = vae.decode(torch.from_numpy(io["mu"]))
    np.testing.assert_allclose(dec.numpy(), io["decoded"], atol=1e-5)


def test_release_model_dirs_load_through_registry(tmp_path: Path) -> None:
    dirs = write_release_model_dirs(FIX / "av_flow_small.pt", tmp_path, FIX / "head_vae_small.pt", FIX)
    model = load_model(dirs["avflow"])
    assert model.preset == "release" and model.normalizer.kind == "release"
    assert model.components["head_vae"] == dirs["headvae"].resolve()
    io = np.load(FIX / "av_flow_small_io.npz")
    with torch.no_grad():
        v = model(torch.from_numpy(io["x"]), torch.from_numpy(io["t"]), torch.from_numpy(io["tokens"]))
    np.testing.assert_allclose(v.numpy(), io["v"], atol=1e-5, rtol=1e-5)
    vae = load_head_vae(dirs["headvae"])
    np.testing.assert_allclose(vae.encode_mean(np.load(FIX / "head_vae_small_io.npz")["pose"]),
                               np.load(FIX / "head_vae_small_io.npz")["mu"], atol=1e-5)


def test_mismatches_are_clear_errors(tmp_path: Path) -> None:
    ckpt = torch.load(FIX / "av_flow_small.pt", weights_only=True)
    state = dict(ckpt["model_state_dict"])
    state["diffusion_module.extra.weight"] = torch.zeros(1)
    with pytest.raises(AvflowError, match="unknown to the release layout"):
        convert_avflow_state(state)
    state = dict(ckpt["model_state_dict"])
    state["diffusion_module.fusion.0.weight"] = torch.zeros(3, 3)
    with pytest.raises(AvflowError, match="wrong shape"):
        convert_avflow_state(state)
    state = dict(ckpt["model_state_dict"])
    del state["diffusion_module.out_a.bias"]
    with pytest.raises(AvflowError, match="missing"):
        convert_avflow_state(state)
    bare = {k.removeprefix("diffusion_module."): v for k, v in ckpt["model_state_dict"].items()}
    with pytest.raises(AvflowError, match="prefix"):
        convert_avflow_state(bare)
    torch.save({"weights": {}}, tmp_path / "bad.pt")
    with pytest.raises(AvflowError, match="model_state_dict"):
        convert_avflow_checkpoint(tmp_path / "bad.pt")
    with pytest.raises(AvflowError, match="not found"):
        convert_avflow_checkpoint(tmp_path / "missing.pt")


def test_headvae_keys_unknown_to_the_release_are_one_error() -> None:
    assert rename_headvae_key("encoder.1.layers.2.linear1.weight") == "enc_layers.2.linear1.weight"
    assert rename_headvae_key("decoder.0.layers.0.norm1.bias") == "dec_layers.0.norm1.bias"
    assert rename_headvae_key("fc_var.weight") == "to_logvar.weight"
    with pytest.raises(KeyError):
        rename_headvae_key("encoder.2.weight")
    state = dict(torch.load(FIX / "head_vae_small.pt", weights_only=True)["model_state_dict"])
    state["extra.weight"] = torch.zeros(1)
    state["encoder.9.bias"] = torch.zeros(1)
    with pytest.raises(AvflowError, match=r"^vae.pt: 2 keys unknown to the release head VAE \(e.g. \['extra.weight', 'encoder.9.bias'\]\)"):
        convert_headvae_state(state, "vae.pt")
