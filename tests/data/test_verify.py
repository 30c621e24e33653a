"""Cheap shard pre-flight and ``data info`` on missing, truncated and random-byte shards."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from avflow_cli.cli.main import app
from avflow_cli.data.verify import check_shards_readable, shard_info, shard_problems
from avflow_cli.errors import InputFileError

runner = CliRunner()


@pytest.fixture
def shards(synthetic_shards: Path, tmp_path: Path) -> Path:
    out = tmp_path / "shards"
    shutil.copytree(synthetic_shards, out)
    return out


def _damage(shard: Path, how: str) -> None:
    if how == "missing":
        shard.unlink()
    elif how == "truncated":
        shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])
    else:
        shard.write_bytes(bytes(range(256)) * 64)


def test_whole_shards_pass(shards: Path) -> None:
    assert shard_problems(shards) == []
    check_shards_readable(shards)
    assert shard_info(shards)["problems"] == []
    assert runner.invoke(app, ["data", "info", str(shards)]).exit_code == 0


@pytest.mark.parametrize("how, message", [("missing", "shard missing"), ("truncated", "unreadable HDF5 shard"),
                                          ("random", "unreadable HDF5 shard")])
def test_damaged_shard_is_named(shards: Path, how: str, message: str) -> None:
    shard = sorted(shards.glob("*.h5"))[0]
    _damage(shard, how)
    problems = shard_problems(shards)
    assert len(problems) == 1 and shard.name in problems[0] and message in problems[0]
    with pytest.raises(InputFileError, match=message) as info:
        check_shards_readable(shards)
    assert info.value.path == shard
    result = runner.invoke(app, ["data", "info", str(shards)])
    assert result.exit_code == 2, result.output
    assert shard.name in result.output and "1 shard problem(s)" in result.output
    assert "Traceback" not in result.output


def test_only_the_clips_asked_for_are_checked(shards: Path) -> None:
    from avflow_cli.data.schema import ShardIndex

    index = ShardIndex.load(shards)
    broken = index.clips[0].shard
    _damage(shards / broken, "missing")
    elsewhere = [c for c in index.clips if c.shard != broken]
    assert elsewhere and shard_problems(shards, index, elsewhere) == []
