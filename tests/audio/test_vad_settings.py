"""VAD settings no run can use are one-line errors, not tracebacks or silent NaN."""

from __future__ import annotations

import math

import pytest

from avflow_cli.audio.vad import VadConfig
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


def test_defaults_and_edges_pass() -> None:
    VadConfig().validate()
    VadConfig(min_gap_ms=0, hangover_ms=60_000, attenuation_db=0, energy_gate_db=-3).validate()
