"""Preemption: SIGTERM/SIGUSR1 → checkpoint at the current step, PREEMPTED marker, exit 75, exact resume."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import numpy as np
import pytest

from avflow_cli.train import avflow as train_mod
from avflow_cli.train.avflow import train_avflow
from avflow_cli.train.common import RunDir
from avflow_cli.train.preemption import MARKER_NAME, PREEMPTED_EXIT_CODE, Preempted, PreemptionHandler

SETS = {"model.d_model": "16", "model.depth": "1", "model.heads": "2", "model.hidden_dim": "16",
        "train.segment_frames": "32", "train.batch_size": "2", "train.log_every": "1", "train.val_every": "0",
        "train.sample_every": "0", "train.ckpt_every": "100"}


def test_handler_only_flags_and_restores_previous_handlers() -> None:
    before = signal.getsignal(signal.SIGUSR1)
    with PreemptionHandler() as h:
        assert not h.requested()
        os.kill(os.getpid(), signal.SIGUSR1)  # would end the process without the handler
        assert h.requested() and h.received == signal.SIGUSR1
        os.kill(os.getpid(), signal.SIGTERM)
        assert h.received == signal.SIGUSR1  # the first signal is the one reported
    assert signal.getsignal(signal.SIGUSR1) == before


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGUSR1])
def test_signal_mid_run_checkpoints_that_step_and_resume_matches(synthetic_shards: Path, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch, sig: int) -> None:
    steps, stop_at = 7, 4
    ref = tmp_path / "ref"
    train_avflow(synthetic_shards, ref, overrides={**SETS, "train.steps": str(steps)}, device="cpu", show_progress=False)

    calls = {"n": 0}
    real_loss = train_mod.flow_loss

    def loss_then_signal(*args, **kwargs):  # the signal lands in the middle of step `stop_at`
        calls["n"] += 1
        if calls["n"] == stop_at:
            os.kill(os.getpid(), sig)
        return real_loss(*args, **kwargs)

    monkeypatch.setattr(train_mod, "flow_loss", loss_then_signal)
    out = tmp_path / "run"
    with pytest.raises(Preempted) as info:
        train_avflow(synthetic_shards, out, overrides={**SETS, "train.steps": str(steps)}, device="cpu", show_progress=False)
    assert info.value.code == PREEMPTED_EXIT_CODE
    marker = json.loads((out / MARKER_NAME).read_text())
    assert marker["step"] == stop_at and marker["signal"] == signal.Signals(sig).name
    import torch

    assert torch.load(out / "train_state.pt", weights_only=True)["step"] == stop_at  # ckpt_every=100: saved for the signal
    monkeypatch.setattr(train_mod, "flow_loss", real_loss)
    train_avflow(synthetic_shards, out, overrides={**SETS, "train.steps": str(steps)}, resume=True, device="cpu",
                 show_progress=False)
    assert not (out / MARKER_NAME).exists()  # a resumed run is no longer preempted
    got = {e["step"]: e["train/loss"] for e in RunDir(out).read_log()}
    want = {e["step"]: e["train/loss"] for e in RunDir(ref).read_log()}
    assert sorted(got) == list(range(1, steps + 1))
    np.testing.assert_allclose([got[s] for s in sorted(got)], [want[s] for s in sorted(want)], rtol=1e-6)
