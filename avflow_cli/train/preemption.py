"""Checkpoint on preemption: SIGTERM or SIGUSR1 → finish the step, save, exit for a requeue.

Clusters stop jobs with a signal and a grace period: SLURM sends SIGTERM on preemption and at the
time limit (then SIGKILL after ``KillWait``), and ``sbatch --signal=B:USR1@180`` warns early;
torchrun passes SIGTERM on to every rank. The handler only raises a flag (nothing unsafe runs
inside a signal handler); the training loop asks :meth:`PreemptionHandler.requested` after each
optimiser step, all ranks agree through one all-reduce (so they stop at the same step), the loop
writes its normal checkpoint, and :meth:`PreemptionHandler.stop` leaves ``PREEMPTED`` in the run
directory and exits with :data:`PREEMPTED_EXIT_CODE`. ``pipelines/train.slurm`` sees the marker,
requeues the job, and the next start passes ``--resume``: the loss curve continues exactly.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any

import torch
import torch.distributed as tdist

PREEMPT_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)
MARKER_NAME = "PREEMPTED"  # in the run directory: {"step", "signal", "time"}; the job script requeues on it
PREEMPTED_EXIT_CODE = 75  # EX_TEMPFAIL: stopped on purpose with a checkpoint; run again with --resume


class Preempted(SystemExit):
    """Raised after the checkpoint is on disk: the process ends with :data:`PREEMPTED_EXIT_CODE`."""


class PreemptionHandler:
    """Context manager installing flag-only handlers for ``signals`` (main thread only; else inert)."""

    def __init__(self, signals: tuple[int, ...] = PREEMPT_SIGNALS) -> None:
        self.signals = signals
        self.received: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> PreemptionHandler:
        if threading.current_thread() is threading.main_thread():
            for sig in self.signals:
                self._previous[sig] = signal.signal(sig, self._on_signal)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self.received is None:
            self.received = signum

    def requested(self, dist: Any = None) -> bool:
        """Whether any rank got a signal; a collective when distributed (call it on every rank)."""
        flag = self.received is not None
        if dist is not None and getattr(dist, "enabled", False):
            device = dist.device if dist.device.type == "cuda" else torch.device("cpu")
            t = torch.tensor([1 if flag else 0], dtype=torch.int32, device=device)
            tdist.all_reduce(t, op=tdist.ReduceOp.MAX)
            flag = bool(t.item())
        return flag

    def stop(self, run_dir: str | Path, step: int, is_main: bool = True) -> None:
        """After the checkpoint of ``step`` is written: leave the marker (rank 0), say so, exit."""
        name = signal.Signals(self.received).name if self.received is not None else "signal on another rank"
        if is_main:
            from avflow_cli.console import err_console
            from avflow_cli.fsutil import atomic_path

            marker = Path(run_dir) / MARKER_NAME
            with atomic_path(marker) as tmp:
                Path(tmp).write_text(json.dumps({"step": step, "signal": name, "time": time.time()}) + "\n")
            err_console.print(f"{name}: checkpoint saved at step {step}; continue with --resume")
        raise Preempted(PREEMPTED_EXIT_CODE)


def clear_marker(run_dir: str | Path) -> None:
    """Remove a previous run's ``PREEMPTED`` (a resumed run is no longer preempted)."""
    (Path(run_dir) / MARKER_NAME).unlink(missing_ok=True)
