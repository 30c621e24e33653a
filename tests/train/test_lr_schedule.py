"""The learning-rate schedule: warm-up, then constant (the paper) or cosine decay to lr_final."""

from __future__ import annotations

import math

import pytest

from avflow_cli.models.config import TrainConfig
from avflow_cli.train.common import lr_factor


def test_constant_schedule_is_warmup_then_flat() -> None:
    cfg = TrainConfig(steps=100, warmup_steps=10)
    assert lr_factor(0, cfg) == pytest.approx(0.1)
    assert [lr_factor(s, cfg) for s in (9, 50, 99, 500)] == [1.0, 1.0, 1.0, 1.0]


def test_cosine_schedule_decays_to_lr_final_at_the_last_step() -> None:
    cfg = TrainConfig(steps=110, warmup_steps=10, lr_schedule="cosine", lr_final=0.1)
    assert lr_factor(10, cfg) == pytest.approx(1.0)
    assert lr_factor(60, cfg) == pytest.approx(0.1 + 0.9 * 0.5)  # half-way: the cosine's midpoint
    assert lr_factor(110, cfg) == pytest.approx(0.1)
    assert lr_factor(1000, cfg) == pytest.approx(0.1)  # past the budget (a resumed, extended run) it stays low
    values = [lr_factor(s, cfg) for s in range(10, 111)]
    assert all(a >= b for a, b in zip(values, values[1:])) and not math.isnan(sum(values))
