"""pipelines/train.slurm with fake sbatch/srun/scontrol: submission, torchrun rendezvous from the
allocation, automatic --resume, and a real 2-process (gloo) run preempted by a signal and requeued."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from avflow_cli.train.common import RunDir

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = str(ROOT / "pipelines" / "train.slurm")
SETS = ["model.d_model=16", "model.depth=1", "model.heads=2", "model.hidden_dim=16", "train.segment_frames=32",
        "train.batch_size=2", "train.log_every=1", "train.val_every=0", "train.sample_every=0", "train.ckpt_every=100"]


def fake_cluster(tmp: Path) -> dict[str, str]:
    """PATH with fake sbatch (logs, prints a job id), scontrol (hostnames; requeue logged) and srun
    (drops its own options, then becomes the command, so signals reach it as srun forwards them)."""
    bin_ = tmp / "bin"
    bin_.mkdir(exist_ok=True)
    scripts = {
        "sbatch": '#!/bin/sh\necho "$@" >> "$FAKE_LOG.sbatch"\necho "4242;cluster"\n',
        "scontrol": '#!/bin/sh\nif [ "$1" = show ]; then echo localhost; echo node2; else echo "$@" >> "$FAKE_LOG.scontrol"; fi\n',
        "srun": '#!/bin/sh\necho "$@" >> "$FAKE_LOG.srun"\nwhile [ "${1#--}" != "$1" ]; do shift; done\nexec "$@"\n',
    }
    for name, text in scripts.items():
        (bin_ / name).write_text(text)
        (bin_ / name).chmod(0o755)
    return {**os.environ, "PATH": f"{bin_}:{os.environ['PATH']}", "FAKE_LOG": str(tmp / "fake"), "OMP_NUM_THREADS": "1"}


def job_env(env: dict[str, str], **extra: str) -> dict[str, str]:
    return {**env, "SLURM_JOB_ID": "4242", "SLURM_NNODES": "1", "SLURM_JOB_NODELIST": "localhost", **extra}


def test_usage_and_submission(tmp_path: Path) -> None:
    res = subprocess.run(["bash", SCRIPT], capture_output=True, text=True, cwd=tmp_path)
    assert res.returncode == 2 and "SHARDS OUT" in res.stdout
    env = fake_cluster(tmp_path) | {"SBATCH_EXTRA": "--nodes=4 --gpus-per-node=8"}
    res = subprocess.run(["bash", SCRIPT, "shards", "run", "--steps", "9"], env=env, capture_output=True, text=True,
                         cwd=tmp_path)
    assert res.returncode == 0 and "submitted training job 4242" in res.stdout
    assert (tmp_path / "fake.sbatch").read_text().split() == ["--parsable", "--nodes=4", "--gpus-per-node=8", SCRIPT,
                                                              "shards", "run", "--steps", "9"]


def test_job_builds_the_rendezvous_and_resumes_automatically(tmp_path: Path) -> None:
    record = tmp_path / "torchrun.args"
    fake_torchrun = tmp_path / "torchrun"
    fake_torchrun.write_text(f'#!/bin/sh\necho "$@" > {record}\necho "OMP=$OMP_NUM_THREADS" >> {record}\n')
    fake_torchrun.chmod(0o755)
    env = job_env(fake_cluster(tmp_path), TORCHRUN=str(fake_torchrun), SLURM_NNODES="2", SLURM_JOB_NODELIST="gpu[1-2]",
                  SLURM_GPUS_ON_NODE="4", SLURM_CPUS_PER_TASK="32", PRESET="base")
    env.pop("OMP_NUM_THREADS")
    out = tmp_path / "run"
    res = subprocess.run(["bash", SCRIPT, "shards", str(out), "--set", "train.bf16=true"], env=env, capture_output=True,
                         text=True, cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    args, omp = record.read_text().splitlines()
    want = (f"--nnodes=2 --nproc_per_node=4 --rdzv_backend=c10d --rdzv_endpoint=localhost:{29400 + 4242 % 1000} "
            f"--rdzv_id=4242 --max_restarts=0 -m avflow_cli.cli.main train avflow --data shards --out {out} "
            "--preset base --set train.bf16=true")
    assert args == want and omp == "OMP=8"  # 32 CPUs per node task / 4 ranks
    assert (tmp_path / "fake.srun").read_text().startswith("--ntasks-per-node=1 --kill-on-bad-exit=1")
    out.mkdir()
    (out / "train_state.pt").write_bytes(b"")  # a checkpoint from an earlier (preempted) job
    (out / "PREEMPTED").write_text("{}")
    subprocess.run(["bash", SCRIPT, "shards", str(out)], env=env, check=True, capture_output=True, cwd=tmp_path)
    assert record.read_text().splitlines()[0].endswith("--preset base --resume")
    assert not (out / "PREEMPTED").exists()
    assert not (tmp_path / "fake.scontrol").exists()  # finished normally: no requeue


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_process_run_preempted_requeued_and_resumed_on_the_same_curve(synthetic_shards: Path, tmp_path: Path) -> None:
    steps = 8
    env = fake_cluster(tmp_path)
    torchrun = f"{sys.executable} -m torch.distributed.run"
    extra = ["--steps", str(steps), "--device", "cpu"] + [a for s in SETS for a in ("--set", s)]

    def job(out: Path, **more: str) -> subprocess.Popen:
        e = job_env(env, TORCHRUN=torchrun, GPUS_PER_NODE="2", PRESET="tiny", RDZV_PORT=str(_free_port()), **more)
        return subprocess.Popen(["bash", SCRIPT, str(synthetic_shards), str(out), *extra], env=e, cwd=tmp_path,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    ref = tmp_path / "ref"
    proc = job(ref)
    assert proc.wait(timeout=600) == 0, proc.stdout.read()[-3000:]

    out = tmp_path / "run"
    proc = job(out)
    deadline = time.time() + 600
    while time.time() < deadline:  # wait until the 2 ranks are training, then warn like sbatch --signal=B:USR1
        log = RunDir(out).read_log() if (out / "log.jsonl").is_file() else []
        if log and log[-1]["step"] >= 3:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGUSR1)
    assert proc.wait(timeout=300) == 0
    text = proc.stdout.read()
    assert "requeueing job 4242" in text, text[-3000:]
    assert (tmp_path / "fake.scontrol").read_text().split() == ["requeue", "4242"]
    stopped = RunDir(out).read_log()[-1]["step"]
    assert 3 <= stopped < steps and (out / "PREEMPTED").is_file()

    proc = job(out, SLURM_RESTART_COUNT="1")  # the requeued job
    assert proc.wait(timeout=600) == 0
    assert "resuming" in proc.stdout.read()
    got = {e["step"]: e["train/loss"] for e in RunDir(out).read_log()}
    want = {e["step"]: e["train/loss"] for e in RunDir(ref).read_log()}
    assert sorted(got) == list(range(1, steps + 1))
    np.testing.assert_allclose([got[s] for s in sorted(got)], [want[s] for s in sorted(want)], rtol=1e-6)
