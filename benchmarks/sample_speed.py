"""Sampling speed of AV-Flow next to the matmul floor measured in the same run.

    python benchmarks/sample_speed.py [--preset base] [--steps 8] [--device cpu] [--lengths 5,20,60]

For the preset's network (random weights, AdaLN gates perturbed so every block computes), it
1. measures GEMM throughput at the model's own shapes (fp32 and bf16) and derives the floor:
   the seconds the linear layers of ``steps`` Euler steps need at that rate;
2. times ``inference.generate`` for 20 s of output in fp32 and bf16 (best of ``--repeats``);
3. times every length in ``--lengths`` (seconds of output) with its peak memory, each in a
   fresh subprocess so the peak is its own (CPU: sampled RSS growth; GPU: max allocated);
4. reports the relative difference between the bf16 and fp32 outputs (same noise).
bf16 is timed only where its GEMM is not slower than fp32: CPUs without AVX512-BF16/AMX
emulate it at a fraction of the fp32 rate, which the printed GEMM rates show.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "2")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from avflow_cli import constants as K  # noqa: E402


def build_model(preset: str, device: str) -> torch.nn.Module:
    from avflow_cli.models.avflow import AVFlow
    from avflow_cli.models.config import avflow_preset
    from avflow_cli.models.normalize import Normalizer

    cfg, _ = avflow_preset(preset)
    torch.manual_seed(0)
    model = AVFlow(cfg)
    with torch.no_grad():  # a trained model's gates are not zero: make every block do its work
        for name, p in model.named_parameters():
            if name.endswith("_mod.proj.weight"):
                p[: cfg.d_model].normal_(0, 0.02)
    dims = {"face": cfg.face_dim, "head": cfg.head_dim, "mel": cfg.mel_dim, "tokens": cfg.token_dim}
    model.normalizer = Normalizer.identity(dims)
    return model.to(device).eval()


def linear_shapes(model: torch.nn.Module) -> list[tuple[int, int]]:
    """(in, out) of every linear applied per frame (the time-embedding MLP runs once, skipped)."""
    return [(m.in_features, m.out_features) for n, m in model.named_modules()
            if isinstance(m, torch.nn.Linear) and not n.startswith("time_embed")]


def step_flops(model: torch.nn.Module, frames: int) -> float:
    """Multiply-adds ×2 of one velocity evaluation: linears + windowed attention (exact window)."""
    cfg = model.config
    lin = sum(2.0 * i * o for i, o in linear_shapes(model)) * frames
    stacks = 1 if cfg.fusion == "shared" else 2
    keys = cfg.window_left + cfg.window_right + 1
    attn = stacks * cfg.depth * 2 * 2.0 * keys * cfg.d_model * frames  # QKᵀ and PV
    return lin + attn


def gemm_rate(model: torch.nn.Module, frames: int, dtype: torch.dtype, device: str, budget_s: float = 0.3) -> float:
    """FLOP/s of torch.mm at the model's linear shapes (frames × in @ in × out), count-weighted.

    Each distinct shape is timed on its own (best of a few runs within ``budget_s``), so a slow
    precision (emulated bf16) costs seconds, not minutes.
    """
    shapes = linear_shapes(model)
    probe = torch.randn(128, shapes[0][0], device=device, dtype=dtype)
    t0 = time.perf_counter()
    torch.mm(probe, torch.randn(shapes[0][0], shapes[0][1], device=device, dtype=dtype))
    _sync(device)
    if 2.0 * 128 * shapes[0][0] * shapes[0][1] / (time.perf_counter() - t0) < 5e9:
        frames = 128  # a very slow path (emulated bf16): a rate measured on fewer rows is enough
    total_flops, total_time = 0.0, 0.0
    for shape in sorted(set(shapes)):
        i, o = shape
        x = torch.randn(frames, i, device=device, dtype=dtype)
        w = torch.randn(i, o, device=device, dtype=dtype)
        torch.mm(x, w)  # warm-up
        best, spent = float("inf"), 0.0
        while spent < budget_s or best == float("inf"):
            _sync(device)
            t0 = time.perf_counter()
            torch.mm(x, w)
            _sync(device)
            dt = time.perf_counter() - t0
            best, spent = min(best, dt), spent + dt
            if spent > budget_s and best < float("inf"):
                break
        n = shapes.count(shape)
        total_flops += 2.0 * frames * i * o * n
        total_time += best * n
    return total_flops / total_time


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_generate(model: torch.nn.Module, frames: int, steps: int, bf16: bool, repeats: int) -> tuple[float, dict]:
    from avflow_cli.models.inference import generate

    tokens = np.random.default_rng(0).normal(size=(frames, K.TOKEN_DIM)).astype(np.float32)
    generate(model, tokens[: min(frames, 64)], steps=1, bf16=bf16)  # warm-up
    best, out = float("inf"), {}
    for _ in range(repeats):
        _sync(str(next(model.parameters()).device))
        t0 = time.perf_counter()
        out = generate(model, tokens, steps=steps, seed=0, bf16=bf16)
        _sync(str(next(model.parameters()).device))
        best = min(best, time.perf_counter() - t0)
    return best, out


class PeakRSS:
    """Peak resident memory above the level at entry, sampled every few ms by a thread (CPU)."""

    def __enter__(self) -> "PeakRSS":
        import threading

        self.base = self.peak = self._rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @staticmethod
    def _rss() -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def _poll(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, self._rss())

    @property
    def mib(self) -> float:
        return (self.peak - self.base) / 2**20


def child(args: argparse.Namespace) -> None:
    """Subprocess mode: one length and precision; prints JSON {seconds, peak_mb[, out]}."""
    model = build_model(args.preset, args.device)
    frames = int(args.child_seconds * K.FPS)
    time_generate(model, 64, 1, args.child_bf16, 1)
    if args.device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        sec, out = time_generate(model, frames, args.steps, args.child_bf16, 1)
        peak = (torch.cuda.max_memory_allocated() - base) / 2**20
    else:
        with PeakRSS() as mem:
            sec, out = time_generate(model, frames, args.steps, args.child_bf16, 1)
        peak = mem.mib
    result = {"seconds": sec, "peak_mb": peak}
    if args.child_dump:
        np.savez(args.child_dump, **out)
    print(json.dumps(result))


def run_child(args: argparse.Namespace, seconds: float, bf16: bool, dump: str | None = None) -> dict:
    cmd = [sys.executable, __file__, "--preset", args.preset, "--steps", str(args.steps), "--device", args.device,
           "--child-seconds", str(seconds)] + (["--child-bf16"] if bf16 else []) + (["--child-dump", dump] if dump else [])
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode:
        raise SystemExit(f"child failed: {res.stderr[-2000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    import tempfile

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="base")
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--lengths", default="5,20,60", help="seconds of output to time (20 is the headline row)")
    ap.add_argument("--bf16", choices=("auto", "yes", "no"), default="auto",
                    help="auto: time bf16 only where its GEMM is at least as fast as fp32 (native bf16)")
    ap.add_argument("--diff-seconds", type=float, default=1.0, help="output length for the bf16-vs-fp32 comparison")
    ap.add_argument("--child-seconds", type=float, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--child-bf16", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--child-dump", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child_seconds is not None:
        child(args)
        return
    con = Console(width=150)
    model = build_model(args.preset, args.device)
    frames = K.SEGMENT_FRAMES  # 20 s
    flops = step_flops(model, frames) * args.steps
    con.print(f"{args.preset}: {model.num_parameters() / 1e6:.1f} M parameters, {flops / args.steps / 1e9:.0f} GFLOP "
              f"per Euler step over {frames} frames, {args.steps} steps, device {args.device} "
              f"({torch.backends.cpu.get_cpu_capability() if args.device == 'cpu' else torch.cuda.get_device_name()}), "
              f"{torch.get_num_threads()} threads")
    rates = {"fp32": gemm_rate(model, frames, torch.float32, args.device),
             "bf16": gemm_rate(model, frames, torch.bfloat16, args.device)}
    del model
    precisions = ["fp32"]
    if args.bf16 == "yes" or (args.bf16 == "auto" and rates["bf16"] >= rates["fp32"]):
        precisions.append("bf16")
    else:
        con.print(f"bf16 GEMM runs at {rates['bf16'] / 1e9:.1f} GFLOP/s here vs {rates['fp32'] / 1e9:.1f} fp32 "
                  "(no native bf16 on this CPU: emulated); bf16 timing skipped (--bf16 yes forces it)")
    results: dict[tuple[float, str], dict] = {}
    lengths = [float(s) for s in args.lengths.split(",")]
    for sec_len in lengths:
        for prec in precisions:
            results[(sec_len, prec)] = run_child(args, sec_len, prec == "bf16")

    table = Table(title=f"{frames} frames (20 s) of output, {args.steps} Euler steps")
    for col in ("precision", "GEMM rate (GFLOP/s)", "floor (s)", "generate (s)", "× floor"):
        table.add_column(col, justify="right")
    for prec in ("fp32", "bf16"):
        floor = flops / rates[prec]
        r = results.get((20.0, prec))
        table.add_row(prec, f"{rates[prec] / 1e9:.1f}", f"{floor:.2f}", f"{r['seconds']:.2f}" if r else "skipped",
                      f"{r['seconds'] / floor:.2f}" if r else "-")
    con.print(table)

    lt = Table(title="time and memory vs output length (fresh process each)")
    for col in ("length (s)", "frames", "precision", "generate (s)", "s per output s", "peak memory (MiB)"):
        lt.add_column(col, justify="right")
    for (sec_len, prec), r in results.items():
        lt.add_row(f"{sec_len:g}", str(int(sec_len * K.FPS)), prec, f"{r['seconds']:.2f}",
                   f"{r['seconds'] / sec_len:.3f}", f"{r['peak_mb']:.0f}")
    con.print(lt)

    with tempfile.TemporaryDirectory() as tmp:
        outs = {}
        for prec in ("fp32", "bf16"):
            run_child(args, args.diff_seconds, prec == "bf16", f"{tmp}/{prec}.npz")
            outs[prec] = np.load(f"{tmp}/{prec}.npz")
    rel = {k: float(np.linalg.norm(outs["bf16"][k] - outs["fp32"][k]) / max(np.linalg.norm(outs["fp32"][k]), 1e-12))
           for k in ("face", "head", "mel")}
    con.print(f"bf16 vs fp32 relative L2 difference ({args.diff_seconds:g} s, same noise): "
              + ", ".join(f"{k} {v:.2e}" for k, v in rel.items()))


if __name__ == "__main__":
    main()
