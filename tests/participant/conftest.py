"""Fixtures for the listening avatar: tiny random model directories (with and without guidance),
real participant speech (flite) and a participant video of the demo avatar's face."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from avflow_cli import constants as K


def make_model_dirs(root: Path, shards: Path, *, guidance: bool, depth: int = 2, steps: int = 3, seed: int = 0,
                    face_dim: int = 16) -> Path:
    """AV-Flow (perturbed random weights so attention and guidance matter) + head VAE + t2t, as training writes
    them; ``face_dim`` 9 adds the demo avatar's face decoder (previews, demo-trained participant features)."""
    import torch

    from avflow_cli.data.schema import ShardIndex
    from avflow_cli.models.avflow import AVFlow
    from avflow_cli.models.config import AVFlowConfig, HeadVAEConfig
    from avflow_cli.models.headvae import HeadVAE
    from avflow_cli.models.normalize import Normalizer
    from avflow_cli.models.registry import save_model_dir
    from avflow_cli.models.text2tokens import TextToTokens, preset, save_t2t

    torch.manual_seed(seed)
    extra = dict(participant_tokens=True, participant_visual_dim=K.SMIRK_DIM) if guidance else {}
    cfg = AVFlowConfig(face_dim=face_dim, d_model=32, hidden_dim=64, heads=2, depth=depth, steps=steps, attn_block=16,
                       token_source="alignment (alignment)", **extra)
    net = AVFlow(cfg)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    norm = Normalizer.for_config(cfg, ShardIndex.load(shards))
    save_model_dir(root / "avflow", "avflow", cfg, net.state_dict(), norm.to_json(), preset="tiny",
                   components={"head_vae": "../headvae"})
    vcfg = HeadVAEConfig(ff_dim=16)
    save_model_dir(root / "headvae", "headvae", vcfg, HeadVAE(vcfg).state_dict(), preset="tiny")
    save_t2t(root / "t2t", TextToTokens(preset("tiny", token_source="alignment (alignment)")).eval())
    if face_dim == 9:
        from avflow_cli.render.demo_avatar import FACE_DECODER_FILE, FaceDecoder

        FaceDecoder.create().save(root / "avflow" / FACE_DECODER_FILE)
    return root / "avflow"


@pytest.fixture(scope="session")
def guided_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Trained-with-guidance layout on demo-like 9-d face codes, with the demo avatar's decoder."""
    from avflow_cli.data.synthetic import make_synthetic_shards

    root = tmp_path_factory.mktemp("guided")
    make_synthetic_shards(root / "shards", participant=True, face_dim=9)
    return make_model_dirs(root, root / "shards", guidance=True, face_dim=9)


@pytest.fixture(scope="session")
def plain_model(synthetic_shards: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_model_dirs(tmp_path_factory.mktemp("plain"), synthetic_shards, guidance=False)


@pytest.fixture(scope="session")
def speech_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A participant sentence spoken by flite's rms voice (16 kHz mono), as the demo participant speaks."""
    if shutil.which("flite") is None:
        pytest.skip("flite is not installed (make system-deps)")
    out = tmp_path_factory.mktemp("speech") / "user.wav"
    subprocess.run(["flite", "-voice", "rms", "-t", "I think that is a really good idea, tell me more.", "-o", str(out)],
                   check=True)
    return out


@pytest.fixture(scope="session")
def face_video(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    """3 s of the demo avatar's participant face at 30 fps: neutral, a smile (1.0-2.0 s), neutral.
    Returns the mp4 and the smile track (frames,)."""
    from avflow_cli.render.demo_avatar import NEUTRAL_PARAMS, PARAM_INDEX, render_video

    n = 90
    params = np.repeat(NEUTRAL_PARAMS[None], n, axis=0).astype(np.float32)
    smile = np.zeros(n, np.float32)
    smile[30:60] = 1.0
    params[:, PARAM_INDEX["smile"]] = smile
    out = tmp_path_factory.mktemp("video") / "user.mp4"
    render_video(out, params, None, K.FACE_RATE, size=192, palette="participant")
    return out, smile
