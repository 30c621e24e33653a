"""The matmul floor of a forward pass, measured honestly: FLOPs counted, GEMMs replayed, timed alternately.

- :func:`count_flops`: ``torch.utils.flop_counter.FlopCounterMode`` on the real forward (no
  hand-written formula that can drift from the code).
- :func:`record_gemms`: every GEMM (``mm``/``addmm``/``bmm``/``baddbmm``) the forward dispatches,
  with its exact shapes, strides and dtypes (after autocast), so :class:`GemmReplay` can run the
  same matrix multiplies alone, at the same threads: that time is the floor.
- :func:`alternate`: time several callables in turn (A, B, A, B, …) in one run, so a load spike
  on a shared machine hits all of them alike; ratios come from medians of the paired runs.

A forward faster than its own GEMMs (ratio < 1) is impossible: :func:`verdict` flags it as a
benchmark bug instead of printing a flattering number.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

aten = torch.ops.aten
# out= variants too: the attention's qkv GEMM writes straight into its padded buffer (models/attention.py)
GEMM_OPS = {aten.mm.default, aten.addmm.default, aten.bmm.default, aten.baddbmm.default,
            aten.mm.out, aten.addmm.out, aten.bmm.out, aten.baddbmm.out}
# composite ops that reach the dispatch mode whole: decomposed (as FlopCounterMode does) to see their GEMMs;
# nothing else is decomposed, so fused kernels (SDPA) are recorded as what really runs, i.e. not as GEMMs
DECOMPOSE = {aten.linear.default, aten.matmul.default}


def sync(device: str | torch.device) -> None:
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def count_flops(fn: Callable[[], object]) -> tuple[float, dict[str, float]]:
    """(total FLOPs, FLOPs per aten op) of one call of ``fn``, from torch's own counter."""
    counter = FlopCounterMode(display=False)
    with counter:
        fn()
    per_op = {str(k): float(v) for k, v in counter.get_flop_counts().get("Global", {}).items()}
    return float(counter.get_total_flops()), per_op


@dataclass(frozen=True)
class TensorSpec:
    shape: tuple[int, ...]
    stride: tuple[int, ...]
    dtype: torch.dtype
    device: str

    def make(self, gen: torch.Generator) -> torch.Tensor:
        """A tensor of this exact layout (transposed views and broadcast strides kept)."""
        size = 1 + sum((n - 1) * s for n, s in zip(self.shape, self.stride)) if all(self.shape) else 0
        base = torch.randn(max(size, 1), generator=gen).mul_(0.05).to(device=self.device, dtype=self.dtype)
        return base.as_strided(self.shape, self.stride)


@dataclass(frozen=True)
class GemmCall:
    op: object
    args: tuple  # TensorSpec or plain values
    kwargs: tuple  # (name, value) pairs

    def flops(self) -> float:
        """2·M·N·K summed over the batch (torch's own count for these ops)."""
        mats = [a for a in self.args if isinstance(a, TensorSpec) and len(a.shape) >= 2]
        x, w = mats[-2], mats[-1]
        batch = x.shape[0] if len(x.shape) == 3 else 1
        return 2.0 * batch * x.shape[-2] * x.shape[-1] * w.shape[-1]


class _Recorder(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[GemmCall] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        kwargs = kwargs or {}
        if func in DECOMPOSE:
            with self:
                out = func.decompose(*args, **kwargs)
            if out is not NotImplemented:
                return out
        if func in GEMM_OPS:
            spec = tuple(_spec(a) for a in args)
            self.calls.append(GemmCall(func, spec, tuple(sorted((k, _spec(v)) for k, v in kwargs.items()))))
        return func(*args, **kwargs)


def _spec(a: object) -> object:
    return TensorSpec(tuple(a.shape), tuple(a.stride()), a.dtype, str(a.device)) if isinstance(a, torch.Tensor) else a


def record_gemms(fn: Callable[[], object]) -> list[GemmCall]:
    """The GEMMs one call of ``fn`` dispatches, in order."""
    rec = _Recorder()
    with rec:
        fn()
    return rec.calls


class GemmReplay:
    """Runs the recorded GEMMs alone (same ops, shapes, strides, dtypes), inputs made once per layout."""

    def __init__(self, calls: list[GemmCall], seed: int = 0) -> None:
        gen = torch.Generator().manual_seed(seed)
        pool: dict[TensorSpec, torch.Tensor] = {}
        self.calls = []
        for c in calls:
            args = tuple(pool.setdefault(a, a.make(gen)) if isinstance(a, TensorSpec) else a for a in c.args)
            kwargs = {k: v.make(gen) if isinstance(v, TensorSpec) else v for k, v in c.kwargs}  # out=: its own
            self.calls.append((c.op, args, kwargs))
        self.flops = sum(c.flops() for c in calls)

    def __call__(self) -> None:
        for op, args, kwargs in self.calls:
            op(*args, **kwargs)


def alternate(fns: dict[str, Callable[[], object]], repeats: int, device: str = "cpu", warmup: int = 1) -> dict[str, list[float]]:
    """Seconds per call of each function, timed in turn (a, b, a, b, …) ``repeats`` times."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            sync(device)
            t0 = time.perf_counter()
            fn()
            sync(device)
            times[name].append(time.perf_counter() - t0)
    return times


def paired_ratio(num: list[float], den: list[float]) -> float:
    """Median of the per-round ratios (each round's two timings share the machine's load)."""
    return statistics.median(a / b for a, b in zip(num, den))


def verdict(ratio: float, goal: float) -> str:
    """'ok' / 'above goal' / a loud flag when a forward beats its own GEMMs (a benchmark bug)."""
    if ratio < 0.98:
        return "BENCHMARK BUG: faster than its own GEMMs"
    return "ok" if ratio <= goal else f"above goal ({goal:g}×)"
