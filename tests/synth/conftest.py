"""A tiny untrained model family (AV-Flow + head VAE + text-to-tokens) for synthesis tests."""

from __future__ import annotations

from pathlib import Path

import pytest


def make_tiny_models(root: Path) -> Path:
    """Random-init AV-Flow, head VAE and text-to-tokens in sibling model directories, as training
    writes them; returns the AV-Flow directory."""
    import torch

    from avflow_cli.data.schema import ShardIndex
    from avflow_cli.data.synthetic import make_synthetic_shards
    from avflow_cli.models.avflow import AVFlow
    from avflow_cli.models.config import AVFlowConfig, HeadVAEConfig
    from avflow_cli.models.headvae import HeadVAE
    from avflow_cli.models.normalize import Normalizer
    from avflow_cli.models.registry import save_model_dir
    from avflow_cli.models.text2tokens import TextToTokens, preset, save_t2t

    shards = root / "shards"
    make_synthetic_shards(shards, num_clips=3, frames=80)
    torch.manual_seed(0)
    cfg = AVFlowConfig(face_dim=16, d_model=32, hidden_dim=64, heads=2, depth=1, steps=2)
    norm = Normalizer.for_config(cfg, ShardIndex.load(shards))
    save_model_dir(root / "models" / "avflow", "avflow", cfg, AVFlow(cfg).state_dict(), norm.to_json(),
                   preset="tiny", components={"head_vae": "../headvae", "t2t": "../t2t"})
    vcfg = HeadVAEConfig(ff_dim=16)
    save_model_dir(root / "models" / "headvae", "headvae", vcfg, HeadVAE(vcfg).state_dict(), preset="tiny")
    save_t2t(root / "models" / "t2t", TextToTokens(preset("tiny")).eval())
    return root / "models" / "avflow"


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The AV-Flow directory of a tiny model family (shared by the whole session: treat as read-only)."""
    return make_tiny_models(tmp_path_factory.mktemp("tiny_models"))
