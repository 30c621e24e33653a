"""Real processes: DDP under torchrun (CPU, gloo) and `kill -9` followed by --resume. Slow."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from avflow_cli.train.avflow import train_avflow
from avflow_cli.train.common import RunDir

SETS = ["model.d_model=16", "model.depth=1", "model.heads=2", "model.hidden_dim=16", "train.segment_frames=32",
        "train.batch_size=2", "train.log_every=1", "train.val_every=0", "train.sample_every=0"]


def _cmd(shards: Path, out: Path, steps: int, extra: list[str] = ()) -> list[str]:
    args = ["train", "avflow", "--data", str(shards), "--out", str(out), "--steps", str(steps), "--device", "cpu", *extra]
    for s in SETS:
        args += ["--set", s]
    return args


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1"}


@pytest.mark.slow
def test_ddp_two_processes_on_cpu(synthetic_shards: Path, tmp_path: Path) -> None:
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29533",
           "-m", "avflow_cli.cli.main", *_cmd(synthetic_shards, out, 4)]
    res = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    steps = [e["step"] for e in RunDir(out).read_log()]
    assert steps == [1, 2, 3, 4]  # rank 0 alone logs
    assert (out / "model.safetensors").is_file()
    import torch

    state = torch.load(out / "train_state.pt", weights_only=True)
    assert state["world"] == 2 and len(state["rng"]) == 2


@pytest.mark.slow
def test_kill_9_then_resume_matches_uninterrupted(synthetic_shards: Path, tmp_path: Path) -> None:
    steps = 14
    ref = tmp_path / "ref"
    train_avflow(synthetic_shards, ref, overrides={**dict(s.split("=") for s in SETS), "train.steps": str(steps),
                 "train.ckpt_every": "3"}, device="cpu", show_progress=False)
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "avflow_cli.cli.main", *_cmd(synthetic_shards, out, steps, ["--set", "train.ckpt_every=3"])]
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while time.time() < deadline:
        log = RunDir(out).read_log() if (out / "log.jsonl").is_file() else []
        if log and log[-1]["step"] >= 8:
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert RunDir(out).read_log()[-1]["step"] < steps
    res = subprocess.run([sys.executable, "-m", "avflow_cli.cli.main", "train", "avflow", "--data", str(synthetic_shards),
                          "--out", str(out), "--resume", "--device", "cpu"], env=_env(), capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    got = {e["step"]: e["train/loss"] for e in RunDir(out).read_log()}
    want = {e["step"]: e["train/loss"] for e in RunDir(ref).read_log()}
    assert sorted(got) == list(range(1, steps + 1))
    np.testing.assert_allclose([got[s] for s in sorted(got)], [want[s] for s in sorted(want)], rtol=1e-6)
    assert json.loads((out / "config.json").read_text())["train"]["steps"] == steps
