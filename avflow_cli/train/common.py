"""Training plumbing shared by every model (AV-Flow, head VAE, text-to-tokens).

One explicit loop, :func:`run_training`, drives a :class:`TrainTask` that says what is being
trained; everything else here is the machinery around it.

API (used by ``train/avflow.py``, ``train/headvae.py``, ``train/t2t.py``)::

    dist = setup_distributed("auto")            # CPU, one GPU, or torchrun (env RANK/WORLD_SIZE)
    task = TrainTask(
        kind="avflow", model=model, train=train_cfg,            # train_cfg: config.TrainConfig-like
        model_config=model_cfg, normalization=norm_json, preset="tiny", components={...},
        make_batches=lambda start, end: loader,    # yields batch dicts for steps [start, end) in order
        loss_fn=lambda model, batch: (loss, {"mel": ...}),  # batch already on dist.device
        validate=lambda ema_model: {"loss": ...},  # optional, rank 0, every train.val_every
        sample=lambda ema_model, step, out_dir: None,  # optional, rank 0, every train.sample_every
    )
    summary = run_training(task, run_dir, resume=False, dist=dist)
    cleanup_distributed()

A run directory holds ``config.json`` (kind, preset, model config, normalisation, the training
config), ``model.safetensors`` (EMA weights: what ``load_model`` reads), ``train_state.pt``
(raw weights, EMA, optimiser, scheduler, step, RNG states of every rank), ``log.jsonl`` (one JSON
line of scalars per log/validation step), ``tb/`` (TensorBoard scalars) and ``samples/``.
Checkpoints are atomic (temporary file, then rename). Batches are a pure function of the step
(see ``data/dataset.py``) and the RNG states are restored, so ``resume=True`` after ``kill -9``
continues with exactly the loss curve of an uninterrupted run.
"""

from __future__ import annotations

import contextlib
import copy
import fcntl
import json
import math
import os
import random
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as tdist
from torch import nn

from avflow_cli.device import resolve_device
from avflow_cli.errors import AvflowError
from avflow_cli.fsutil import atomic_path, ensure_writable_dir

STATE_NAME = "train_state.pt"
LOG_NAME = "log.jsonl"
MAX_TRAIN_STEPS = 10**9  # beyond this a step count is a typo, not a plan
LOCK_NAME = ".train.lock"  # held (flock) by the process training into the run directory
IDS_CACHE = "text_ids.json"  # text-to-tokens runs: the phonemised training texts (train/t2t.py)
STATE_FORMAT = 2  # 2: RNG states as tensors and plain containers (1 pickled numpy's state)
# model-config fields a resumed run may change: they do not alter the weights' shapes or meaning
NON_ARCHITECTURE_FIELDS = frozenset({"steps", "temperature", "token_gain", "duration_scale", "guidance_dropout", "attn_block",
                                     "encode_chunk", "kld_weight", "smooth_weight"})


# ---------------------------------------------------------------------------------------------
# Devices and processes
# ---------------------------------------------------------------------------------------------
@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world > 1


def check_train_config(cfg: Any, *, windows: bool = True) -> Any:
    """Refuse training settings no run can use (one line each), before anything is built or written.

    ``windows``: the run reads fixed-length windows (AV-Flow, head VAE), so ``segment_frames``
    must be positive; text-to-tokens reads whole utterances when it is 0.
    """
    from avflow_cli.checks import MAX_SEED

    def bad(key: str, rule: str) -> AvflowError:
        return AvflowError(f"train.{key} must be {rule}, got {getattr(cfg, key)!r}")

    at_least = {"steps": 1, "batch_size": 1, "log_every": 1, "sample_frames": 1, "segment_frames": 1 if windows else 0,
                "num_workers": 0, "warmup_steps": 0, "ema_start": 0, "val_every": 0, "val_windows": 0,
                "sample_every": 0, "ckpt_every": 0}
    for key, low in at_least.items():
        if hasattr(cfg, key) and getattr(cfg, key) < low:
            raise bad(key, f"at least {low}")
    if cfg.steps > MAX_TRAIN_STEPS:
        raise bad("steps", f"at most {MAX_TRAIN_STEPS:,} (the paper trains 300,000)")
    for key in ("lr", "eps"):
        value = getattr(cfg, key)
        if not (math.isfinite(value) and value > 0):
            raise bad(key, "a finite positive number")
    for key in ("weight_decay", "grad_clip", "sigma_min", "lambda_mel", "lambda_face", "lambda_head", "lr_final"):
        value = getattr(cfg, key, 0.0)
        if not (math.isfinite(value) and value >= 0):
            raise bad(key, "a finite number >= 0")
    if not 0.0 <= cfg.ema_decay <= 1.0:
        raise bad("ema_decay", "in [0, 1]")
    if len(cfg.betas) != 2 or not all(0.0 <= b < 1.0 for b in cfg.betas):
        raise bad("betas", "two numbers in [0, 1)")
    if not 0 <= cfg.seed <= MAX_SEED:
        raise bad("seed", f"between 0 and {MAX_SEED}")
    return cfg


def run_configs(
    model_cls: type, preset_fn: Callable[[str], tuple[Any, Any]], out: str | Path, preset: str,
    config_file: str | Path | None, overrides: dict[str, Any] | None, resume: bool, *, windows: bool = True,
) -> tuple[Any, Any, str, set[str], bool]:
    """Model + train config of a run: the saved ones when resuming (a run keeps its settings),
    else the preset's; then ``config_file`` and ``--set`` overrides on top; the train config is
    checked before any data is read (``windows``: see :func:`check_train_config`).

    Returns (model config, train config, preset, overridden keys, resumed?).
    """
    from avflow_cli.models.config import TrainConfig, dataclass_from_dict, resolve_configs

    run = RunDir(out)
    if resume and run.config.is_file():
        from avflow_cli.models.registry import read_config

        saved = read_config(run.root)
        model_cfg = dataclass_from_dict(model_cls, saved["model"], str(run.config))
        train_cfg = dataclass_from_dict(TrainConfig, saved.get("train", {}), str(run.config))
        model_cfg, train_cfg, touched = resolve_configs(model_cfg, train_cfg, config_file, overrides)
        return model_cfg, check_train_config(train_cfg, windows=windows), saved.get("preset") or preset, touched, True
    model_cfg, train_cfg = preset_fn(preset)
    model_cfg, train_cfg, touched = resolve_configs(model_cfg, train_cfg, config_file, overrides)
    return model_cfg, check_train_config(train_cfg, windows=windows), preset, touched, False


def setup_distributed(device: str | None = "auto") -> Dist:
    """Join the torchrun process group when launched by torchrun (env WORLD_SIZE > 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist(device=resolve_device(device))
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(device)
    if dev.type == "cuda":
        dev = torch.device("cuda", local_rank)
        torch.cuda.set_device(dev)
    if not tdist.is_initialized():
        tdist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    return Dist(rank=rank, world=world, local_rank=local_rank, device=dev)


def cleanup_distributed() -> None:
    if tdist.is_available() and tdist.is_initialized():
        tdist.destroy_process_group()


def barrier(dist: Dist) -> None:
    if dist.enabled:
        tdist.barrier()


# ---------------------------------------------------------------------------------------------
# EMA, schedule, RNG
# ---------------------------------------------------------------------------------------------
class EMA:
    """Exponential moving average of a module's parameters (buffers are copied)."""

    def __init__(self, model: nn.Module, decay: float, start: int = 0) -> None:
        self.decay, self.start = decay, start
        self.module = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        ema_p = list(self.module.parameters())
        src_p = list(model.parameters())
        if step < self.start or self.decay <= 0:
            for e, p in zip(ema_p, src_p):
                e.copy_(p.detach())
        else:
            torch._foreach_lerp_(ema_p, [p.detach() for p in src_p], 1.0 - self.decay)
        for b_ema, b in zip(self.module.buffers(), model.buffers()):
            b_ema.copy_(b)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.module.state_dict()


def warmup_factor(step: int, warmup: int) -> float:
    """Linear warm-up from 1/warmup to 1 over ``warmup`` steps, then constant (the paper's lr)."""
    return 1.0 if warmup <= 0 else min(1.0, (step + 1) / warmup)


LR_SCHEDULES = ("constant", "cosine")


def lr_factor(step: int, cfg: Any) -> float:
    """Multiplier of ``cfg.lr`` at ``step``: warm-up, then constant or a cosine decay.

    ``cosine`` falls from 1 after warm-up to ``lr_final`` at ``cfg.steps``: small models trained
    for a fixed budget sharpen markedly in the low-lr tail (measured in docs/quality.md).
    """
    factor = warmup_factor(step, cfg.warmup_steps)
    if cfg.lr_schedule == "cosine" and cfg.steps > cfg.warmup_steps:
        progress = min(1.0, max(0.0, (step - cfg.warmup_steps) / (cfg.steps - cfg.warmup_steps)))
        factor *= cfg.lr_final + (1.0 - cfg.lr_final) * 0.5 * (1.0 + math.cos(math.pi * progress))
    return factor


def capture_rng(device: torch.device) -> dict[str, Any]:
    """Every RNG's state as tensors and plain containers (loadable with ``weights_only=True``)."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    numpy_state = {"name": str(name), "keys": torch.from_numpy(np.asarray(keys, np.int64)), "pos": int(pos),
                   "has_gauss": int(has_gauss), "cached_gaussian": float(cached)}
    state = {"torch": torch.get_rng_state(), "numpy": numpy_state, "python": random.getstate()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def restore_rng(state: dict[str, Any], device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    saved = state["numpy"]
    if isinstance(saved, dict):
        keys = np.asarray(saved["keys"].numpy(), np.uint32)
        np.random.set_state((saved["name"], keys, saved["pos"], saved["has_gauss"], saved["cached_gaussian"]))
    else:  # format 1: numpy's own tuple
        np.random.set_state(saved)
    random.setstate(state["python"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def seed_everything(seed: int, rank: int = 0) -> None:
    s = seed * 1000 + rank
    torch.manual_seed(s)
    np.random.seed(s % (2**32))
    random.seed(s)


def oom_advice(err: BaseException, batch_size: int, segment_frames: int) -> AvflowError:
    return AvflowError(
        f"out of memory at batch {batch_size} × {segment_frames} frames ({str(err).splitlines()[0][:120]}); "
        f"try --set train.batch_size={max(1, batch_size // 2)} or --set train.segment_frames={max(64, segment_frames // 2)}, "
        "bf16 (--set train.bf16=true on GPU), or more GPUs with torchrun"
    )


def _is_oom(err: BaseException) -> bool:
    if isinstance(err, torch.cuda.OutOfMemoryError):
        return True
    text = str(err).lower()
    return isinstance(err, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)


# ---------------------------------------------------------------------------------------------
# Run directory and checkpoints
# ---------------------------------------------------------------------------------------------
class RunDir:
    """Paths of one training run."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.config = self.root / "config.json"
        self.weights = self.root / "model.safetensors"
        self.state = self.root / STATE_NAME
        self.log = self.root / LOG_NAME
        self.tb = self.root / "tb"
        self.samples = self.root / "samples"
        self.lock = self.root / LOCK_NAME

    def has_checkpoint(self) -> bool:
        return self.state.is_file()

    def read_log(self) -> list[dict[str, Any]]:
        """The log's records; a line torn by ``kill -9`` in mid-write is skipped."""
        if not self.log.is_file():
            return []
        records = []
        for line in self.log.read_text(errors="replace").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict):
                records.append(record)
        return records

    def truncate_log(self, step: int) -> None:
        """Drop log lines after ``step`` (a killed run may have logged past its last checkpoint)."""
        if self.log.is_file():
            keep = [json.dumps(e) for e in self.read_log() if e.get("step", 0) <= step]
            with atomic_path(self.log) as tmp:
                tmp.write_text("".join(line + "\n" for line in keep))


_HELD_LOCKS: set[int] = set()


def _forget_locks_in_child() -> None:
    """A forked child (a DataLoader worker) must not keep the lock alive after its parent dies."""
    for fd in _HELD_LOCKS:
        with contextlib.suppress(OSError):
            os.close(fd)
    _HELD_LOCKS.clear()


os.register_at_fork(after_in_child=_forget_locks_in_child)


def release_run_dir(fd: int) -> None:
    """Release a lock taken by :func:`lock_run_dir`."""
    _HELD_LOCKS.discard(fd)
    os.close(fd)


def lock_run_dir(run: RunDir) -> int:
    """Take the run directory's exclusive lock; returns the descriptor for :func:`release_run_dir`.

    A second training into the same directory is refused instead of interleaving its log and
    checkpoints. The OS drops the lock when the holder dies, even by ``kill -9``, so a stale
    lock file never blocks. File systems without ``flock`` run unlocked.
    """
    fd = os.open(run.lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
        os.close(fd)
        raise AvflowError(f"{run.root}: another training (pid {holder}) is writing this run directory; "
                          "wait for it to end or choose another --out") from None
    except OSError:  # no flock here (some network file systems)
        return fd
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    _HELD_LOCKS.add(fd)
    return fd


def _run_entries() -> set[str]:
    """Every name a run directory may hold (what a run killed before its first checkpoint leaves)."""
    from avflow_cli.render.demo_avatar import FACE_DECODER_FILE

    run = RunDir(".")
    return {p.name for p in (run.config, run.weights, run.state, run.log, run.tb, run.samples, run.lock)} | {
        IDS_CACHE, FACE_DECODER_FILE}


def check_fresh_out(run: RunDir) -> None:
    """Refuse a new run's ``--out`` that is a file or holds something other than a training run.

    A run killed before its first checkpoint may be started afresh in place; a model directory
    without a training state (an import, a copy), a synth output or a user's folder may not.
    """
    root = run.root
    if root.exists() and not root.is_dir():
        raise AvflowError(f"{root}: exists and is a file; --out names a run directory")
    if not root.is_dir():
        return
    names = {p.name for p in root.iterdir()}
    foreign = sorted(n for n in names - _run_entries() if not n.startswith("."))
    if foreign:
        raise AvflowError(f"{root}: holds files that are not a training run's ({', '.join(foreign[:3])}); "
                          "choose a new --out")
    if run.weights.name in names and run.log.name not in names:
        raise AvflowError(f"{root}: holds a model without training state or log (an import or a copy?); "
                          "choose a new --out")


def _remove_created(run: RunDir, before: set[str] | None) -> None:
    """Remove what a failed fresh run created: the directory itself, or the entries it added."""
    if before is None:
        shutil.rmtree(run.root, ignore_errors=True)
        return
    for name in set(os.listdir(run.root)) - before:
        path = run.root / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def save_checkpoint(run: RunDir, step: int, model: nn.Module, ema: EMA, optimizer: torch.optim.Optimizer,
                    scheduler: Any, rng_states: list[dict[str, Any]], kind: str) -> None:
    """EMA weights → model.safetensors, then everything needed to resume → train_state.pt.

    Non-finite weights (a step that diverged after the last finite loss) are never saved: the
    last good checkpoint stays what ``--resume`` and synth load.
    """
    from avflow_cli.models.registry import save_weights

    weights = ema.state_dict()
    bad = [k for k, v in weights.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise AvflowError(f"{run.root}: step {step} not saved: the weights are not finite ({bad[0]} and "
                          f"{len(bad) - 1} more); training diverged: lower the lr (--set train.lr=...) or enable "
                          "grad clipping (--set train.grad_clip=1.0)")
    save_weights(run.root, weights)
    state = {
        "format": STATE_FORMAT, "kind": kind, "step": step,
        "model": model.state_dict(), "ema": ema.state_dict(),
        "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
        "rng": rng_states, "world": len(rng_states),
    }
    with atomic_path(run.state) as tmp:
        torch.save(state, tmp)


def load_checkpoint(run: RunDir, kind: str) -> dict[str, Any]:
    """``train_state.pt`` as plain data: loading it never runs code (see ``avflow_cli.torchfile``).

    Format-1 states pickled numpy's RNG state, so numpy's array types are allowed as data.
    """
    from avflow_cli.torchfile import load_torch_file, numpy_array_globals

    state = load_torch_file(run.state, "training state", allow=numpy_array_globals())
    if not isinstance(state, dict) or state.get("format") not in (1, STATE_FORMAT):
        raise AvflowError(f"{run.state}: not an avflow training state (format {state.get('format') if isinstance(state, dict) else '?'})")
    if state.get("kind") != kind:
        raise AvflowError(f"{run.state}: a {state.get('kind')!r} training state, not {kind!r}")
    missing = [k for k in ("step", "model", "ema", "optimizer", "scheduler", "rng", "world") if k not in state]
    if missing:
        raise AvflowError(f"{run.state}: incomplete training state (no {', '.join(missing)}); delete it to start over")
    return state


# ---------------------------------------------------------------------------------------------
# Logging
# ---------------------------------------------------------------------------------------------
class ScalarLog:
    """TensorBoard scalars + ``log.jsonl`` (rank 0 only; other ranks get a no-op)."""

    def __init__(self, run: RunDir, enabled: bool, start_step: int) -> None:
        self.run, self.enabled, self.writer = run, enabled, None
        if enabled:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.writer = SummaryWriter(str(run.tb), purge_step=start_step or None)
            except ImportError:  # tensorboard missing: keep the JSON log only
                self.writer = None

    def write(self, step: int, scalars: dict[str, float]) -> None:
        if not self.enabled:
            return
        if self.writer is not None:
            for k, v in scalars.items():
                self.writer.add_scalar(k, v, step)
        with open(self.run.log, "a") as f:
            f.write(json.dumps({"step": step, **{k: float(v) for k, v in scalars.items()}}) + "\n")

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


# ---------------------------------------------------------------------------------------------
# The loop
# ---------------------------------------------------------------------------------------------
@dataclass
class TrainTask:
    """What to train; see the module docstring for each callable's contract."""

    kind: str
    model: nn.Module
    train: Any
    model_config: Any
    make_batches: Callable[[int, int], Iterable[dict[str, torch.Tensor]]]
    loss_fn: Callable[[nn.Module, dict[str, torch.Tensor]], tuple[torch.Tensor, dict[str, Any]]]
    normalization: dict[str, Any] | None = None
    preset: str | None = None
    components: dict[str, str] = field(default_factory=dict)
    validate: Callable[[nn.Module], dict[str, float]] | None = None
    sample: Callable[[nn.Module, int, Path], None] | None = None


def _check_resume_config(run: RunDir, task: TrainTask) -> None:
    from avflow_cli.models.config import to_json_dict
    from avflow_cli.models.registry import read_config

    old = read_config(run.root)
    new_model = to_json_dict(task.model_config)
    diff = sorted(k for k in set(old["model"]) | set(new_model)
                  if old["model"].get(k) != new_model.get(k) and k not in NON_ARCHITECTURE_FIELDS)
    if old["kind"] != task.kind or diff:
        raise AvflowError(f"{run.root}: its checkpoint is a different architecture (differs in {diff or old['kind']}); "
                          "use the same preset/overrides or a new --out")


def _to_device(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def _reduce_scalars(values: dict[str, float], dist: Dist) -> dict[str, float]:
    if not dist.enabled:
        return values
    keys = sorted(values)
    t = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=dist.device if dist.device.type == "cuda" else "cpu")
    tdist.all_reduce(t)
    return {k: float(v) / dist.world for k, v in zip(keys, t.tolist())}


def run_training(task: TrainTask, run_dir: str | Path, *, resume: bool = False, dist: Dist | None = None,
                 stop_after: int | None = None, show_progress: bool = True) -> dict[str, Any]:
    """Train ``task`` into ``run_dir``; returns ``{"step", "last_loss", "val", "seconds"}``.

    ``resume`` needs a checkpoint there (it never silently starts afresh); a second training into
    the same directory is refused (:func:`lock_run_dir`); a fresh run that fails before its first
    checkpoint removes what it created. ``stop_after`` ends the loop after that many steps of
    this call without a final checkpoint (a stand-in for an interrupted run in tests).
    """
    dist = dist or Dist()
    run = RunDir(run_dir)
    if resume and not run.has_checkpoint():
        raise AvflowError(f"{run.root}: nothing to resume (no {STATE_NAME} there); drop --resume to start a new run")
    check_train_config(task.train, windows=False)
    fresh = not run.has_checkpoint()
    if fresh:
        check_fresh_out(run)
    before = set(os.listdir(run.root)) if run.root.is_dir() else None
    ensure_writable_dir(run.root)
    lock = lock_run_dir(run) if dist.is_main else None
    try:
        return _train(task, run, resume=resume, dist=dist, stop_after=stop_after, show_progress=show_progress)
    except BaseException:
        if fresh and dist.is_main and not run.has_checkpoint():
            _remove_created(run, before)
        raise
    finally:
        if lock is not None:
            release_run_dir(lock)


def _train(task: TrainTask, run: RunDir, *, resume: bool, dist: Dist, stop_after: int | None,
           show_progress: bool) -> dict[str, Any]:
    """The loop of :func:`run_training`, inside the run directory's lock."""
    from avflow_cli.models.registry import write_config
    from avflow_cli.train.preemption import PreemptionHandler, clear_marker

    cfg = task.train
    device = dist.device
    model = task.model.to(device)
    barrier(dist)

    start = 0
    state = None
    if run.has_checkpoint():
        if not resume:
            raise AvflowError(f"{run.root}: already holds a training run; pass --resume to continue it or choose a new --out")
        _check_resume_config(run, task)
        state = load_checkpoint(run, task.kind)
        start = int(state["step"])
        if state["world"] != dist.world:
            raise AvflowError(f"{run.state}: saved with {state['world']} processes, resumed with {dist.world}; "
                              "use the same number for an identical continuation")
        if start > cfg.steps:
            raise AvflowError(f"{run.root}: already trained {start} steps, more than train.steps={cfg.steps}; "
                              f"give --steps {start} or more")
    if dist.is_main:  # a resumed run records its (possibly extended) training settings too
        write_config(run.root, task.kind, task.model_config, task.normalization, preset=task.preset,
                     components=task.components, train=cfg)
    barrier(dist)

    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps,
                                  weight_decay=cfg.weight_decay)
    if cfg.lr_schedule not in LR_SCHEDULES:
        raise AvflowError(f"train.lr_schedule must be one of {LR_SCHEDULES}, got {cfg.lr_schedule!r}")
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, cfg))
    if state is not None:
        model.load_state_dict(state["model"])
    ema = EMA(model, cfg.ema_decay, cfg.ema_start)
    if state is not None:
        ema.module.load_state_dict(state["ema"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        restore_rng(state["rng"][dist.rank], device)
        del state
    else:
        seed_everything(cfg.seed, dist.rank)
    if dist.is_main:  # drops records past the checkpoint, or all of a killed run that never saved one
        run.truncate_log(start)
        clear_marker(run.root)  # preemption (train/preemption.py): this run is no longer stopped

    train_model: nn.Module = model
    if dist.enabled:
        from torch.nn.parallel import DistributedDataParallel as DDP

        train_model = DDP(model, device_ids=[device.index] if device.type == "cuda" else None)
    if cfg.compile:
        train_model = torch.compile(train_model)
    autocast = (lambda: torch.autocast(device.type, dtype=torch.bfloat16)) if cfg.bf16 else contextlib.nullcontext

    log = ScalarLog(run, dist.is_main, start)
    end = cfg.steps if stop_after is None else min(cfg.steps, start + stop_after)
    summary: dict[str, Any] = {"step": start, "last_loss": float("nan"), "val": {}, "seconds": 0.0}
    if start >= end:  # a finished run resumed: nothing to train, report where it stands
        summary["last_loss"] = next((e["train/loss"] for e in reversed(run.read_log()) if "train/loss" in e), float("nan"))
    t0 = time.perf_counter()
    window_t, window_steps = time.perf_counter(), 0
    acc: dict[str, float] = {}
    from avflow_cli.console import progress as make_progress

    bar = make_progress() if (dist.is_main and show_progress) else None
    ctx = bar if bar is not None else contextlib.nullcontext()
    model.train()
    step = start
    try:
        with ctx, PreemptionHandler() as preemption:  # SIGTERM/SIGUSR1: checkpoint, then exit (train/preemption.py)
            bar_task = bar.add_task(f"train {task.kind}", total=cfg.steps, completed=start, status="") if bar else None
            for batch in task.make_batches(start, end):
                batch = _to_device(batch, device)
                try:
                    with autocast():
                        loss, terms = task.loss_fn(train_model, batch)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                except Exception as err:  # noqa: BLE001 - only out-of-memory is translated
                    if _is_oom(err):
                        raise oom_advice(err, cfg.batch_size, getattr(cfg, "segment_frames", 0)) from err
                    raise
                if not torch.isfinite(loss):
                    raise AvflowError(f"loss became {loss.item()} at step {step}; lower the lr (--set train.lr=...) "
                                      "or enable grad clipping (--set train.grad_clip=1.0)")
                clip = cfg.grad_clip if cfg.grad_clip and cfg.grad_clip > 0 else math.inf
                grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
                optimizer.step()
                scheduler.step()
                step += 1
                ema.update(model, step)
                for k, v in {"loss": loss.detach(), **terms, "grad_norm": grad_norm}.items():
                    acc[k] = acc.get(k, 0.0) + float(v)
                window_steps += 1
                if step % cfg.log_every == 0 or step == end:
                    now = time.perf_counter()
                    scalars = _reduce_scalars({k: v / window_steps for k, v in acc.items()}, dist)
                    scalars["lr"] = optimizer.param_groups[0]["lr"]
                    scalars["steps_per_s"] = window_steps / max(now - window_t, 1e-9)
                    log.write(step, {f"train/{k}": v for k, v in scalars.items()})
                    summary["last_loss"] = scalars["loss"]
                    if bar is not None:
                        bar.update(bar_task, completed=step,
                                   status=f"loss {scalars['loss']:.4f}  {scalars['steps_per_s']:.2f} steps/s")
                    acc, window_t, window_steps = {}, now, 0
                elif bar is not None:
                    bar.update(bar_task, completed=step)
                if task.validate and cfg.val_every and (step % cfg.val_every == 0 or step == cfg.steps):
                    if dist.is_main:
                        val = task.validate(ema.module)
                        summary["val"] = val
                        log.write(step, {f"val/{k}": v for k, v in val.items()})
                    barrier(dist)
                if task.sample and cfg.sample_every and (step % cfg.sample_every == 0 or step == cfg.steps):
                    if dist.is_main:
                        task.sample(ema.module, step, ensure_writable_dir(run.samples))
                    barrier(dist)
                is_last = step == cfg.steps
                preempted = preemption.requested(dist)  # every rank agrees on the step it stops at
                if (cfg.ckpt_every and step % cfg.ckpt_every == 0) or is_last or preempted:
                    rng = capture_rng(device)
                    if dist.enabled:
                        gathered: list[Any] = [None] * dist.world
                        tdist.all_gather_object(gathered, rng)
                    else:
                        gathered = [rng]
                    if dist.is_main:
                        save_checkpoint(run, step, model, ema, optimizer, scheduler, gathered, task.kind)
                    barrier(dist)
                if preempted:
                    preemption.stop(run.root, step, dist.is_main)  # raises Preempted (exit code 75)
    except KeyboardInterrupt:
        if dist.is_main:
            from avflow_cli.console import err_console

            if run.has_checkpoint():
                err_console.print(f"interrupted at step {step}; continue with --resume (last checkpoint is kept)")
            else:
                err_console.print(f"interrupted at step {step}, before the first checkpoint: nothing to resume")
        raise
    finally:
        log.close()
    summary["step"] = step
    summary["seconds"] = time.perf_counter() - t0
    return summary
