"""Tokens in: a Synthesizer needs no text-to-tokens model until it is given text."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from avflow_cli.errors import AvflowError
from avflow_cli.synth import Synthesizer


@pytest.fixture(scope="module")
def no_t2t(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny family without its text-to-tokens model (and no t2t recorded or beside it)."""
    root = tmp_path_factory.mktemp("no_t2t")
    shutil.copytree(tiny_model.parent / "avflow", root / "avflow")
    shutil.copytree(tiny_model.parent / "headvae", root / "headvae")
    return root / "avflow"


def test_tokens_in_works_without_a_text_model(no_t2t: Path) -> None:
    synth = Synthesizer(no_t2t, vocoder="hifigan", device="cpu")
    assert synth.t2t_dir is None and synth.components["t2t"].startswith("none")
    tokens = np.random.default_rng(0).normal(size=(40, 29)).astype(np.float32)  # (T, 29)
    result = synth.synthesize_tokens(tokens, seed=0, steps=1)
    assert result.face.shape == (40, 16) and result.head_pose.shape == (40, 7)
    assert len(result.wav) == 40 * 256 and np.abs(result.wav).max() <= 1.0
    with pytest.raises(AvflowError, match="no text-to-tokens model found") as err:
        synth.synthesize("Hello there.")
    assert "\n" not in str(err.value)


def test_text_model_loads_on_first_text_only(tiny_model: Path) -> None:
    synth = Synthesizer(tiny_model, vocoder="hifigan", device="cpu")
    assert synth._t2t is None and synth.t2t_dir == (tiny_model.parent / "t2t").resolve()
    result = synth.synthesize("Hi.", seed=0, steps=1)
    assert synth._t2t is not None and result.tokens.shape[0] == result.face.shape[0]
    assert synth.load_t2t() is synth.t2t  # loaded once


def test_probe_scores_through_synthesize_tokens(no_t2t: Path) -> None:
    """The intelligibility probe's tokens path is Synthesizer.synthesize_tokens, item by item."""
    from avflow_cli.metrics.probe import ProbeItem, score_tokens_path

    synth = Synthesizer(no_t2t, vocoder="hifigan", device="cpu")
    rng = np.random.default_rng(1)
    items = [ProbeItem(text, rng.normal(size=(n, 29)).astype(np.float32), np.full(n, 5.0, np.float32),
                       np.ones(n, bool), np.zeros(n * 256, np.float32)) for text, n in (("hot tea", 30), ("bread", 20))]
    seen = []

    class Mouth:  # lip distance: one number per frame of the generated face
        lip_closed_threshold = 1.0

        def lip_distance(self, face: np.ndarray) -> np.ndarray:
            seen.append(face.shape)
            return np.full(len(face), 5.0, np.float32)

    scores = score_tokens_path(synth, items, Mouth(), steps=1)
    assert seen == [(30, 16), (20, 16)]  # one synthesis per item, on its own tokens
    assert scores.wer >= 0.0 and scores.lip_f1_speech is not None


def test_generate_motion_is_synthesize_tokens_without_the_vocoder(no_t2t: Path) -> None:
    """One generation path: generate_motion gives exactly the motion synthesize_tokens returns, and never vocodes."""
    synth = Synthesizer(no_t2t, vocoder="hifigan", device="cpu")
    tokens = np.random.default_rng(2).normal(size=(30, 29)).astype(np.float32)  # (T, 29)
    full = synth.synthesize_tokens(tokens, seed=3, steps=2)
    calls = []
    vocoder, synth.vocoder = synth.vocoder, lambda mel: calls.append(mel)
    motion = synth.generate_motion(tokens, seed=3, steps=2)
    synth.vocoder = vocoder
    assert not calls and motion.steps == 2 and set(motion.timings) == {"avflow", "head_vae"}
    for name in ("tokens", "mel", "face", "head_latent", "head_pose"):
        np.testing.assert_array_equal(getattr(motion, name), getattr(full, name))
    with pytest.raises(AvflowError, match="--steps must be at least 1"):
        synth.generate_motion(tokens, steps=0)
