"""Training faced with bad input: hostile or missing state, concurrent runs, bad steps, broken shards."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from avflow_cli.cli.main import app
from avflow_cli.errors import AvflowError
from avflow_cli.train.avflow import train_avflow
from avflow_cli.train.common import RunDir, capture_rng, load_checkpoint, lock_run_dir, release_run_dir, restore_rng

runner = CliRunner()
TINY = {"model.d_model": "16", "model.depth": "1", "model.heads": "2", "model.hidden_dim": "16",
        "train.segment_frames": "32", "train.batch_size": "2", "train.val_every": "0", "train.sample_every": "0"}


def _cli(shards: Path, out: Path, *extra: str) -> object:
    args = ["train", "avflow", "--data", str(shards), "--out", str(out), "--device", "cpu"]
    for key, value in TINY.items():
        args += ["--set", f"{key}={value}"]
    return runner.invoke(app, [*args, *extra])  # extra last: its --set wins


def _one_line_error(result: object, message: str) -> str:
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0], result.output
    assert "Traceback" not in result.output
    return errors[0]


@pytest.fixture(scope="module")
def trained_run(synthetic_shards: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished 2-step run (copy it before changing it)."""
    out = tmp_path_factory.mktemp("trained") / "run"
    train_avflow(synthetic_shards, out, overrides={**TINY, "train.steps": "2"}, device="cpu", show_progress=False)
    return out


class _Hostile:
    """Unpickling this calls ``open(path, "w")``: it creates a file (a stand-in for any code)."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self) -> tuple:
        return (open, (self.path, "w"))


def test_hostile_train_state_is_refused_without_running_it(synthetic_shards: Path, trained_run: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    pwned = tmp_path / "pwned"
    torch.save({"format": 2, "kind": "avflow", "step": _Hostile(pwned)}, run / "train_state.pt")
    line = _one_line_error(_cli(synthetic_shards, run, "--resume", "--steps", "3"), "refused: it is not plain weights")
    assert not pwned.exists()
    assert "weights_only" not in line and "io.open" in line  # names what it would have run


def test_train_state_holds_only_plain_data(trained_run: Path) -> None:
    state = torch.load(trained_run / "train_state.pt", weights_only=True)  # no allow-list needed
    assert state["format"] == 2 and state["step"] == 2


def test_rng_states_round_trip_and_old_format_loads(tmp_path: Path) -> None:
    torch.manual_seed(3), np.random.seed(3), random.seed(3)
    saved = capture_rng(torch.device("cpu"))
    want = (torch.rand(2), np.random.rand(2), random.random())
    restore_rng(saved, torch.device("cpu"))
    got = (torch.rand(2), np.random.rand(2), random.random())
    torch.testing.assert_close(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])
    assert got[2] == want[2]
    # format 1 pickled numpy's own state tuple: still loads (numpy arrays allowed as data), and restores
    run = RunDir(tmp_path)
    old_rng = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    torch.save({"format": 1, "kind": "avflow", "step": 5, "model": {}, "ema": {}, "optimizer": {}, "scheduler": {},
                "rng": [old_rng], "world": 1}, run.state)
    state = load_checkpoint(run, "avflow")
    first = np.random.rand()
    restore_rng(state["rng"][0], torch.device("cpu"))
    assert state["step"] == 5 and np.random.rand() == first


@pytest.mark.parametrize("prepare", ["missing", "empty", "no_state"])
def test_resume_without_a_checkpoint_fails_clearly(synthetic_shards: Path, trained_run: Path, tmp_path: Path,
                                                   prepare: str) -> None:
    out = tmp_path / "run"
    if prepare == "empty":
        out.mkdir()
    elif prepare == "no_state":
        shutil.copytree(trained_run, out)
        (out / "train_state.pt").unlink()
    before = sorted(p.name for p in out.iterdir()) if out.exists() else None
    _one_line_error(_cli(synthetic_shards, out, "--resume"), "nothing to resume")
    assert (sorted(p.name for p in out.iterdir()) if out.exists() else None) == before
    with pytest.raises(AvflowError, match="nothing to resume"):  # the API too
        train_avflow(synthetic_shards, out, overrides=TINY, resume=True, device="cpu", show_progress=False)


def test_second_training_into_the_same_run_is_refused(synthetic_shards: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    fd = lock_run_dir(RunDir(out))  # another training holds the run directory
    try:
        with pytest.raises(AvflowError, match=f"another training \\(pid {os.getpid()}\\)"):
            train_avflow(synthetic_shards, out, overrides={**TINY, "train.steps": "1"}, device="cpu", show_progress=False)
        assert sorted(p.name for p in out.iterdir()) == [".train.lock"]  # nothing of the holder's touched
    finally:
        release_run_dir(fd)
    train_avflow(synthetic_shards, out, overrides={**TINY, "train.steps": "1"}, device="cpu", show_progress=False)
    assert RunDir(out).has_checkpoint()


def test_forked_children_do_not_hold_the_lock(tmp_path: Path) -> None:
    fd = lock_run_dir(RunDir(tmp_path))
    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # a DataLoader worker, say, that outlives a killed parent
        os.write(ready_w, b"x")  # the fork handlers have run by now
        time.sleep(3)
        os._exit(0)
    try:
        assert os.read(ready_r, 1) == b"x"
        release_run_dir(fd)  # the parent is gone: the lock must be free although the child lives
        release_run_dir(lock_run_dir(RunDir(tmp_path)))
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(ready_r), os.close(ready_w)


def test_lock_of_a_killed_training_does_not_block(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from avflow_cli.train.common import RunDir, lock_run_dir; "
         "lock_run_dir(RunDir(sys.argv[1])); print('locked', flush=True); time.sleep(60)", str(tmp_path)],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(AvflowError, match=f"pid {holder.pid}"):
            lock_run_dir(RunDir(tmp_path))
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
    deadline = time.time() + 5
    while True:  # the kernel drops the dead holder's lock
        try:
            release_run_dir(lock_run_dir(RunDir(tmp_path)))
            break
        except AvflowError:
            assert time.time() < deadline
            time.sleep(0.05)


@pytest.mark.parametrize("steps", ["0", "-5"])
def test_non_positive_steps_are_rejected(synthetic_shards: Path, tmp_path: Path, steps: str) -> None:
    _one_line_error(_cli(synthetic_shards, tmp_path / "run", "--steps", steps), "--steps must be at least 1")
    _one_line_error(_cli(synthetic_shards, tmp_path / "run", "--set", f"train.steps={steps}"), "must be at least 1")
    _one_line_error(_cli(synthetic_shards, tmp_path / "run", "--steps", "99999999999999999999"), "train.steps must be at most")
    assert not (tmp_path / "run").exists()


def test_resume_past_or_at_the_end(synthetic_shards: Path, trained_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    shutil.copytree(trained_run, out)
    config = (out / "config.json").read_text()
    _one_line_error(_cli(synthetic_shards, out, "--resume", "--steps", "1"), "already trained 2 steps")
    assert (out / "config.json").read_text() == config  # not rewritten with the smaller count
    done = _cli(synthetic_shards, out, "--resume")  # a finished run resumed: nothing to do, its last loss
    assert done.exit_code == 0, done.output
    assert "step 2: train loss" in done.output and "nan" not in done.output


def _corrupt_copy(shards: Path, dest: Path) -> Path:
    shutil.copytree(shards, dest)
    shard = sorted(dest.glob("*.h5"))[0]
    shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 3])
    return shard


def test_corrupt_shard_leaves_no_run_behind(synthetic_shards: Path, tmp_path: Path) -> None:
    shards = tmp_path / "shards"
    shard = _corrupt_copy(synthetic_shards, shards)
    out = tmp_path / "run"
    _one_line_error(_cli(shards, out, "--steps", "2"), shard.name)
    assert not out.exists()  # checked before anything was created
    out.mkdir()
    (out / "notes.md").write_text("x")  # refused: not a run directory
    _one_line_error(_cli(synthetic_shards, out, "--steps", "2"), "not a training run's")
    (out / "notes.md").unlink()
    # through the API (no pre-flight): what the failed fresh run created is removed
    with pytest.raises(AvflowError):
        train_avflow(shards, out, overrides={**TINY, "train.steps": "2"}, device="cpu", show_progress=False)
    assert sorted(p.name for p in out.iterdir()) == []


def test_out_that_is_a_file_or_a_model_is_refused(synthetic_shards: Path, trained_run: Path, tmp_path: Path) -> None:
    afile = tmp_path / "run.txt"
    afile.write_text("x")
    _one_line_error(_cli(synthetic_shards, afile, "--steps", "1"), "exists and is a file")
    assert afile.read_text() == "x"
    model = tmp_path / "model"  # a model directory without training state, e.g. an import
    model.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(trained_run / name, model / name)
    _one_line_error(_cli(synthetic_shards, model, "--steps", "1"), "holds a model without training state")
    assert sorted(p.name for p in model.iterdir()) == ["config.json", "model.safetensors"]


def test_log_line_torn_by_a_kill_is_dropped_on_resume(trained_run: Path, tmp_path: Path) -> None:
    run = RunDir(tmp_path / "run")
    shutil.copytree(trained_run, run.root)
    steps = [e["step"] for e in run.read_log()]
    assert steps and steps[-1] == 2
    with open(run.log, "a") as f:
        f.write('{"step": 3, "train/lo')  # kill -9 in the middle of a write
    assert [e["step"] for e in run.read_log()] == steps
    run.truncate_log(2)
    assert run.log.read_text().endswith("}\n") and [e["step"] for e in run.read_log()] == steps


@pytest.mark.parametrize("setting, message", [
    ("train.batch_size=0", "train.batch_size must be at least 1"), ("train.segment_frames=-1", "train.segment_frames"),
    ("train.lr=-1", "train.lr must be a finite positive"), ("train.lr=nan", "train.lr"),
    ("train.log_every=0", "train.log_every must be at least 1"), ("train.num_workers=-1", "train.num_workers"),
    ("train.seed=-1", "train.seed must be between 0 and"), ("train.ema_decay=2", "train.ema_decay must be in [0, 1]"),
    ("train.warmup_steps=-1", "train.warmup_steps must be at least 0"),
    ("model.d_model=0", "model.d_model must be at least 1"), ("model.heads=0", "model.heads must be at least 1"),
    ("model.heads=-1", "model.heads"),
])
def test_absurd_settings_are_one_line_errors(synthetic_shards: Path, tmp_path: Path, setting: str, message: str) -> None:
    out = tmp_path / "run"
    _one_line_error(_cli(synthetic_shards, out, "--steps", "2", "--set", setting), message)
    assert not out.exists()


def test_absurd_head_vae_settings_are_one_line_errors(synthetic_shards: Path, tmp_path: Path) -> None:
    for setting, message in (("model.heads=0", "model.heads must be at least 1"), ("train.batch_size=0", "batch_size")):
        result = runner.invoke(app, ["train", "headvae", "--data", str(synthetic_shards), "--out", str(tmp_path / "vae"),
                                     "--steps", "1", "--device", "cpu", "--set", setting])
        _one_line_error(result, message)
    assert not (tmp_path / "vae").exists()
