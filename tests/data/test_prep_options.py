"""Shard options no prep run can use are one-line errors before any work (was: silent or endless)."""

from __future__ import annotations

import math

import pytest

from avflow_cli.data.prep import ShardOptions, check_num_shards
from avflow_cli.errors import AvflowError


@pytest.mark.parametrize("field, value, message", [
    ("max_clip_seconds", 0.0, "--max-clip-seconds"), ("max_clip_seconds", math.inf, "--max-clip-seconds"),
    ("max_clip_seconds", math.nan, "--max-clip-seconds"), ("min_clip_seconds", -1.0, "--min-clip-seconds"),
    ("min_clip_seconds", math.nan, "--min-clip-seconds"), ("val_fraction", 2.0, "--val-fraction"),
    ("test_fraction", math.nan, "--test-fraction"), ("length_tolerance_s", -1.0, "--length-tolerance"),
    ("length_tolerance_s", math.inf, "--length-tolerance"),
])
def test_bad_shard_options(field: str, value: float, message: str) -> None:
    with pytest.raises(AvflowError, match=message):
        ShardOptions(**{field: value}).validate()


def test_num_shards_range() -> None:
    assert check_num_shards(None, 20) == 3  # one per 8 sessions
    assert check_num_shards(5, 20) == 5
    for bad in (0, -1, 21, 10**20):  # 10**20 used to loop over empty shards for ever
        with pytest.raises(AvflowError, match="--num-shards must be between 1 and the number of sessions"):
            check_num_shards(bad, 20)

