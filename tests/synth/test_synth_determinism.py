"""The same sentence with the same seed sounds (and moves) the same on every run."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from avflow_cli.synth import Synthesizer


def test_same_seed_same_output_other_seed_differs(tiny_model: Path) -> None:
    first = Synthesizer(tiny_model, vocoder="hifigan", device="cpu").synthesize("Hello there.", seed=3)
    again = Synthesizer(tiny_model, vocoder="hifigan", device="cpu").synthesize("Hello there.", seed=3)
    other = Synthesizer(tiny_model, vocoder="hifigan", device="cpu").synthesize("Hello there.", seed=4)
    for name in ("tokens", "mel", "face", "head_latent", "wav"):
        np.testing.assert_array_equal(getattr(first, name), getattr(again, name), err_msg=name)
    assert not np.array_equal(first.mel, other.mel)
