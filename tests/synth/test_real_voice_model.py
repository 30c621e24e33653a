"""The shipped real-voice model folder (avflow_cli/resources/real_voice/): checksums, size, licence,
and that Synthesizer(<folder>) speaks with it through its own fine-tuned vocoder."""

from __future__ import annotations

import json

import numpy as np

from avflow_cli import constants as K
from avflow_cli.real_voice import MAX_PACKAGE_BYTES, PARTS, REAL_VOICE_DIR, README, checksums, read_checksums


def test_every_file_matches_the_readme_checksums() -> None:
    listed = read_checksums(REAL_VOICE_DIR)
    assert listed == checksums(REAL_VOICE_DIR)  # nothing missing, nothing extra, nothing changed
    for part, files in PARTS.items():
        assert f"{part}/config.json" in listed and f"{part}/model.safetensors" in listed


def test_size_licence_and_provenance() -> None:
    total = sum(p.stat().st_size for p in REAL_VOICE_DIR.rglob("*") if p.is_file())
    assert total <= MAX_PACKAGE_BYTES
    readme = (REAL_VOICE_DIR / README).read_text()
    for needed in ("CC-BY-SA-3.0", "Allison", "Digium", "pipelines/real_voice.sh", "AMD EPYC"):
        assert needed in readme
    imported = json.loads((REAL_VOICE_DIR / "import.json").read_text())
    assert imported["license"] == "CC-BY-SA-3.0" and imported["heldout"]
    config = json.loads((REAL_VOICE_DIR / "avflow" / "config.json").read_text())
    assert config["components"] == {"head_vae": "../headvae", "t2t": "../t2t", "vocoder": "../vocoder"}
    assert config["model"]["token_source"].startswith("alignment")  # the recordings' forced-alignment tokens


def test_synthesizer_speaks_with_the_real_voice_folder() -> None:
    from avflow_cli.synth import Synthesizer

    synth = Synthesizer(REAL_VOICE_DIR / "avflow", device="cpu")
    assert synth.vocoder.name == "student:vocoder"  # the voice's own fine-tuned vocoder
    assert synth.t2t_dir == (REAL_VOICE_DIR / "t2t").resolve()
    result = synth.synthesize("Please hold.", seed=0, steps=4)
    assert result.sample_rate == K.SAMPLE_RATE and result.seconds > 0.3
    assert np.isfinite(result.wav).all() and np.abs(result.wav).max() > 0.01
    assert result.mel.shape[1] == K.N_MELS and len(result.face) == len(result.mel)
    assert result.head_pose is not None and result.head_pose.shape == (len(result.mel), K.HEAD_POSE_DIM)
