"""pipelines/prep.sh and pipelines/prep_array.slurm run the real CLI (sbatch is faked)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from avflow_cli.data.schema import ShardIndex
from avflow_cli.data.verify import verify_shards

ROOT = Path(__file__).resolve().parents[2]
AVFLOW = str(Path(sys.executable).with_name("avflow"))
pytestmark = [pytest.mark.skipif(not Path(AVFLOW).exists(), reason="avflow console script not installed")]


def run(cmd: list[str], env: dict[str, str], cwd: Path) -> str:
    result = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.mark.slow
def test_slurm_array_script(tmp_path: Path, make_tree: Callable[..., Path]) -> None:
    tree = make_tree(tmp_path / "src", num_sessions=3)
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "sbatch").write_text('#!/bin/sh\necho "$@" >> "$SBATCH_LOG"\necho 4242\n')
    (fake / "sbatch").chmod(0o755)
    env = os.environ | {"PATH": f"{fake}:{os.environ['PATH']}", "SBATCH_LOG": str(tmp_path / "sbatch.log"),
                        "AVFLOW": AVFLOW, "OMP_NUM_THREADS": "1"}
    script = str(ROOT / "pipelines" / "prep_array.slurm")
    out = tmp_path / "out"
    args = [str(tree), str(out), "2", "--max-clip-seconds", "4"]
    assert "4242" in run(["bash", script, *args], env, tmp_path)
    submitted = (tmp_path / "sbatch.log").read_text().splitlines()
    assert "--array=0-1" in submitted[0] and "--dependency=afterok:4242" in submitted[1]
    assert submitted[0].endswith(" ".join(args)) and "AVFLOW_PREP_INDEX_JOB=1" in submitted[1]
    for task in ("1", "0"):  # what the cluster would run, in any order
        run(["bash", script, *args], env | {"SLURM_ARRAY_TASK_ID": task}, tmp_path)
    run(["bash", script, *args], env | {"AVFLOW_PREP_INDEX_JOB": "1"}, tmp_path)
    index = ShardIndex.load(out / "shards")
    assert {c.shard for c in index.clips} == {"shard-00000.h5", "shard-00001.h5"}
    assert len({c.session for c in index.clips}) == 3
    assert verify_shards(out / "shards").ok


@pytest.mark.slow
def test_prep_shell_pipeline(tmp_path: Path, make_tree: Callable[..., Path]) -> None:
    tree = make_tree(tmp_path / "src", num_sessions=3)
    env = os.environ | {"AVFLOW": AVFLOW, "TOKENS_SOURCE": "alignment", "OMP_NUM_THREADS": "1"}
    text = run(["bash", str(ROOT / "pipelines" / "prep.sh"), str(tree), str(tmp_path / "out")], env, tmp_path)
    assert "ok" in text and "p_smirk" in text
    assert verify_shards(tmp_path / "out" / "shards").ok


def test_usage_without_arguments(tmp_path: Path) -> None:
    for name in ("prep.sh", "prep_array.slurm"):
        result = subprocess.run(["bash", str(ROOT / "pipelines" / name)], capture_output=True, text=True, cwd=tmp_path)
        assert result.returncode == 2 and "SRC OUT" in result.stdout
