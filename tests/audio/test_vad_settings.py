"""VAD settings no run can use are one-line errors, not tracebacks or silent NaN."""

from __future__ import annotations

import math

import numpy as np
import pytest

from avflow_cli.audio.vad import VadConfig, separate
from avflow_cli.errors import AvflowError


@pytest.mark.parametrize("name", ["min_gap_ms", "min_segment_ms", "hangover_ms", "preroll_ms"])
@pytest.mark.parametrize("value", [-1.0, math.nan, math.inf, 1e30])
def test_durations_must_be_sane(name: str, value: float) -> None:
    with pytest.raises(AvflowError, match=f"VAD {name} must be between 0 and 60000 ms"):
        VadConfig(**{name: value}).validate()


@pytest.mark.parametrize("name, value", [("energy_gate_db", math.nan), ("crosstalk_db", math.inf),
                                         ("attenuation_db", 10.0), ("attenuation_db", -math.inf)])
def test_levels_must_be_sane(name: str, value: float) -> None:
    with pytest.raises(AvflowError, match=f"VAD {name} must be between"):
        VadConfig(**{name: value}).validate()


def test_defaults_and_edges_are_accepted_and_mean_what_they_say() -> None:
    """The defaults and the edge values run the separation, with the gains they name."""
    rng = np.random.default_rng(0)
    noise = (0.01 * rng.standard_normal((2, 48_000))).astype(np.float32)  # 1 s of steady noise, no speech
    quiet = separate(noise, 48_000, VadConfig())
    assert quiet.segments == {"actor": [], "participant": []}
    for name, ch in zip(("actor", "participant"), noise):  # non-speech attenuated by the default -40 dB
        np.testing.assert_allclose(quiet.audio[name], ch * 10 ** (-40 / 20), rtol=1e-5)
    edge = VadConfig(min_gap_ms=0, hangover_ms=60_000, attenuation_db=0, energy_gate_db=-3)
    kept = separate(noise, 48_000, edge)
    for name, ch in zip(("actor", "participant"), noise):  # 0 dB: every sample passes unchanged
        np.testing.assert_allclose(kept.audio[name], ch, rtol=1e-6)
