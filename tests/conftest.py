"""Shared fixtures. Tests run on CPU with few threads so the 2-core CI machine stays responsive."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "2")

import torch  # noqa: E402

torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


@pytest.fixture(scope="session")
def synthetic_shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small shard directory with learnable synthetic streams (no participant guidance)."""
    from avflow_cli.data.synthetic import make_synthetic_shards

    out = tmp_path_factory.mktemp("synthetic_shards")
    make_synthetic_shards(out)
    return out


@pytest.fixture(scope="session")
def synthetic_dyadic_shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Like ``synthetic_shards`` but with participant tokens and SMIRK features."""
    from avflow_cli.data.synthetic import make_synthetic_shards

    out = tmp_path_factory.mktemp("synthetic_dyadic_shards")
    make_synthetic_shards(out, participant=True)
    return out


def make_tiny_avatar_models(root: Path, *, guidance: bool = False) -> Path:
    """Random-init AV-Flow on 9-d demo face codes + text-to-tokens, carrying the demo avatar's
    face decoder, as ``avflow train`` lays them out; returns the AV-Flow directory. ``guidance``:
    the model reads participant tokens and 56-d visual features (alignment-token trained, as the
    demo), so it can listen.

    No head VAE: an untrained one decodes poses that put the camera inside the head, so previews
    and the page use the neutral pose instead. Used by the serve tests and benchmarks/serve_load.py.
    """
    from avflow_cli.models.avflow import AVFlow
    from avflow_cli.models.config import AVFlowConfig
    from avflow_cli.models.normalize import Normalizer, model_streams
    from avflow_cli.models.registry import save_model_dir
    from avflow_cli.models.text2tokens import TextToTokens, preset, save_t2t
    from avflow_cli.render.demo_avatar import FACE_DECODER_FILE, FaceDecoder

    decoder = FaceDecoder.create()
    torch.manual_seed(0)
    source = "alignment (alignment)"
    extra = dict(participant_tokens=True, participant_visual_dim=56) if guidance else {}
    cfg = AVFlowConfig(face_dim=decoder.dim, d_model=32, hidden_dim=64, heads=2, depth=1, steps=2,
                       token_source=source, **extra)
    dims = {"face": cfg.face_dim, "head": cfg.head_dim, "mel": cfg.mel_dim, "tokens": cfg.token_dim,
            "p_tokens": cfg.token_dim, "p_smirk": cfg.participant_visual_dim}
    norm = Normalizer.identity({k: dims[k] for k in model_streams(cfg)})
    model_dir = root / "models" / "avflow"
    save_model_dir(model_dir, "avflow", cfg, AVFlow(cfg).state_dict(), norm.to_json(), preset="tiny",
                   components={"t2t": "../t2t"})
    save_t2t(root / "models" / "t2t", TextToTokens(preset("tiny", token_source=source)).eval())
    decoder.save(model_dir / FACE_DECODER_FILE)
    return model_dir


@pytest.fixture(scope="session")
def tiny_avatar_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random model family that draws the demo avatar (shared by the session: read-only)."""
    return make_tiny_avatar_models(tmp_path_factory.mktemp("tiny_avatar_models"))


@pytest.fixture(scope="session")
def tiny_listening_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Like ``tiny_avatar_model``, trained (randomly) with participant guidance: it can listen."""
    return make_tiny_avatar_models(tmp_path_factory.mktemp("tiny_listening_models"), guidance=True)


@pytest.fixture(scope="session")
def real_data_dir() -> Path:
    """The folder ``make real-data`` filled (``$AVFLOW_REAL_DATA``); the test skips without it."""
    from avflow_cli.realdata import ITEMS, real_data_dir as folder

    root = folder()
    missing = [item for item in ITEMS if not (root / item).is_dir()]
    if missing:
        pytest.skip(f"real recordings not found in {root} ({', '.join(missing)} missing): run `make real-data`")
    return root
