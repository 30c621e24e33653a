"""Sampling speed of AV-Flow against its own matmul floor and the authors' dense attention, in one run.

    python benchmarks/sample_speed.py [--presets base,release] [--lengths 20,60] [--repeats 5]
                                      [--device cpu] [--authors] [--compile] [--generate 20]

For each preset (random weights, AdaLN gates perturbed so every block computes):
1. **Floor.** One velocity evaluation (one Euler step, batch 1) over each length: its FLOPs
   from ``torch.utils.flop_counter.FlopCounterMode`` on the real forward; its GEMMs recorded
   (exact shapes, strides, dtypes) and replayed alone at the same threads. The step and the
   replay are timed ALTERNATELY (step, GEMMs, step, GEMMs, …); the ratio is the median of the
   per-round ratios. A ratio below 1 is impossible and flagged as a benchmark bug. fp32, and bf16
   (autocast) where this CPU's bf16 GEMM is at least as fast as fp32 (``--bf16``).
2. **Authors' code** (``--authors``): their block re-implemented as they wrote it (docs/release_format.md
   §1: dense T×T scores plus a cached log-0/1 mask, softmax, torchtune RoPE; AdaLN modulation,
   gate and residual as separate ops) on the same weights, and avflow's own code as it was before
   issue 13 (per-layer masks and RoPE, padded copies), timed alternately with ours at 20 s, outputs compared. Beyond 4096 frames
   (47.6 s) their RoPE cache cannot run at all; ours is reported as time per frame vs 20 s.
3. **torch.compile** (``--compile``): the compiled forward (inductor; a clean fallback with the
   reason when no compiler works) alternated with eager.
   ``--sampling``: the whole Euler loop (``--steps``) over 20 s, eager per precision and compiled
   (``mode="reduce-overhead"``, i.e. CUDA graphs on GPU).
4. **generate** (``--generate SECONDS``): the full ``inference.generate`` (``--steps`` Euler steps)
   with its peak memory, each length in a fresh process (CPU: sampled RSS growth).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "2")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from floor import GemmReplay, alternate, count_flops, paired_ratio, record_gemms, sync, verdict  # noqa: E402

from avflow_cli import constants as K  # noqa: E402
from avflow_cli.models.inference import sampling_context  # noqa: E402

FLOOR_GOAL = 1.15  # issue 13: a step within 1.15 × its own GEMMs
AUTHORS_GOAL = 3.0  # issue 13: ≥ 3 × faster than the authors' code at 20 s
AUTHORS_MAX_FRAMES = 4096  # their RoPE cache (docs/release_format.md §1)


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


def step_inputs(model: torch.nn.Module, frames: int, device: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    cfg = model.config
    g = torch.Generator().manual_seed(1)
    x = torch.randn(1, frames, cfg.x_dim, generator=g).to(device)
    cond = torch.randn(1, frames, cfg.cond_dim, generator=g).to(device)
    return x, torch.tensor([0.37], device=device), cond


def step_fn(net, inputs, bf16: bool, device: str):
    """One velocity evaluation in the region ``generate`` samples in (``sampling_context``).

    Time bf16 steps inside one more ``sampling_context``: in ``generate`` one autocast region
    spans every Euler step, so each weight is cast to bf16 once per sampling, not once per step.
    """
    dev_type = torch.device(device).type

    def run() -> torch.Tensor:
        with sampling_context(dev_type, bf16):
            return net(*inputs)

    return run


def cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def environment(device: str) -> str:
    if device.startswith("cuda"):
        hw = torch.cuda.get_device_name()
    else:
        flags = open("/proc/cpuinfo").read() if os.path.exists("/proc/cpuinfo") else ""
        isa = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f" {f}" in flags]
        hw = f"{cpu_name()} ({', '.join(isa)}; torch sees {torch.backends.cpu.get_cpu_capability()})"
    return f"{hw}, {torch.get_num_threads()} threads, torch {torch.__version__}"


# ----------------------------------------------------------------------------------------------
# 1. floor
# ----------------------------------------------------------------------------------------------
def floor_rows(model, preset: str, lengths: list[float], precisions: list[str], repeats: int, device: str) -> list[dict]:
    rows = []
    for sec in lengths:
        frames = int(round(sec * K.FPS))
        inputs = step_inputs(model, frames, device)
        for prec in precisions:
            run = step_fn(model, inputs, prec == "bf16", device)
            flops, per_op = count_flops(run)
            replay = GemmReplay(record_gemms(run))
            with sampling_context(torch.device(device).type, prec == "bf16"):
                times = alternate({"step": run, "gemm": replay}, repeats, device)
            step, gemm = statistics.median(times["step"]), statistics.median(times["gemm"])
            ratio = paired_ratio(times["step"], times["gemm"])
            rows.append({"preset": preset, "seconds": sec, "frames": frames, "precision": prec,
                         "gflop": flops / 1e9, "gemm_gflop": replay.flops / 1e9, "gemm_share": replay.flops / flops,
                         "step_s": step, "gemm_s": gemm, "ratio": ratio, "gflops_rate": replay.flops / gemm / 1e9,
                         "verdict": verdict(ratio, FLOOR_GOAL), "flops_by_op": per_op})
    return rows


def scaling_row(model, preset: str, lengths: list[float], repeats: int, device: str) -> dict:
    """Time per frame at each length relative to 20 s, the lengths timed alternately (fp32)."""
    runs = {sec: step_fn(model, step_inputs(model, int(round(sec * K.FPS)), device), False, device) for sec in lengths}
    times = alternate({str(sec): fn for sec, fn in runs.items()}, repeats, device)
    base = statistics.median(times[str(lengths[0])]) / int(round(lengths[0] * K.FPS))
    return {"preset": preset, "per_frame": {sec: statistics.median(times[str(sec)]) / int(round(sec * K.FPS)) / base
                                            for sec in lengths}, "seconds": {sec: statistics.median(times[str(sec)])
                                                                             for sec in lengths}}


def bf16_fast(device: str) -> bool:
    """Whether a bf16 GEMM at a model shape runs at least as fast as fp32 here (timed alternately)."""
    a32, b32 = torch.randn(1024, 512, device=device), torch.randn(512, 1536, device=device)
    a16, b16 = a32.bfloat16(), b32.bfloat16()
    t = alternate({"fp32": lambda: a32 @ b32, "bf16": lambda: a16 @ b16}, 5, device)
    return statistics.median(t["bf16"]) <= statistics.median(t["fp32"])


# ----------------------------------------------------------------------------------------------
# 2. authors' dense attention
# ----------------------------------------------------------------------------------------------
def authors_attention_forward(self, x: torch.Tensor, rope=None, key_mask=None) -> torch.Tensor:  # noqa: ANN001
    """Their WindowedSelfAttention (docs/release_format.md §1): dense T×T scores + cached log(0/1) mask.

    Same weights and layout as ours (head-major qkv, interleaved fp32 RoPE over all head dims,
    heads merged in (H, Dh) order); written from the reference sheet, not copied.
    """
    B, T, _ = x.shape
    H, Dh = self.heads, self.head_dim
    if T > AUTHORS_MAX_FRAMES:
        raise RuntimeError(f"their RoPE cache holds {AUTHORS_MAX_FRAMES} positions; {T} frames cannot run")
    if getattr(self, "_authors_cache", (None,))[0] != T:
        theta = 1.0 / (self.rope_base ** (torch.arange(0, Dh, 2, device=x.device)[: Dh // 2].float() / Dh))
        ang = torch.arange(T, device=x.device).float()[:, None] * theta[None]  # (T, Dh/2)
        cache = torch.stack([ang.cos(), ang.sin()], dim=-1)  # (T, Dh/2, 2)
        ones = torch.ones(T, T, device=x.device)
        band = torch.tril(ones, diagonal=self.right) * (1 - torch.tril(ones, diagonal=-self.left - 1))
        self._authors_cache = (T, cache, torch.log(band))  # 0 inside the window, -inf outside
    _, cache, mask = self._authors_cache
    qkv = self.qkv(x).view(B, T, H, 3 * Dh)
    q, k, v = qkv.split(Dh, dim=-1)

    def rope(t: torch.Tensor) -> torch.Tensor:
        ts = t.float().reshape(B, T, H, Dh // 2, 2)
        c = cache.view(1, T, 1, Dh // 2, 2)
        out = torch.stack([ts[..., 0] * c[..., 0] - ts[..., 1] * c[..., 1],
                           ts[..., 1] * c[..., 0] + ts[..., 0] * c[..., 1]], dim=-1)
        return out.flatten(3).type_as(t)

    q, k, v = rope(q).transpose(1, 2), rope(k).transpose(1, 2), v.transpose(1, 2)  # (B, H, T, Dh)
    scores = q @ k.transpose(-1, -2) / math.sqrt(Dh) + mask  # (B, H, T, T)
    y = torch.softmax(scores, dim=-1) @ v  # (B, H, T, Dh)
    return self.out(y.transpose(1, 2).reshape(B, T, H * Dh))


def authors_block_forward(self, x: torch.Tensor, temb: torch.Tensor, rope=None, key_mask=None) -> torch.Tensor:  # noqa: ANN001
    """Their WindowedDiffusionTransformerBlock (docs/release_format.md §1): per sub-layer
    ``y = LN(x)·(1+gamma)+beta; y = F(y)·alpha; x = x + y``, each step its own op."""
    import torch.nn.functional as F

    from avflow_cli.models.dit import LN_EPS

    for mod, sub in ((self.attn_mod, self.attn), (self.mlp_mod, self.mlp)):
        alpha, beta, gamma = mod(temb)
        y = F.layer_norm(x, (x.shape[-1],), eps=LN_EPS) * (1 + gamma) + beta
        y = (sub(y, rope) if sub is self.attn else sub(y)) * alpha
        x = x + y
    return x


class AuthorsAttention:
    """Context manager: every DiT block runs the authors' formulation (dense attention, unfused AdaLN)."""

    def __enter__(self) -> None:
        from avflow_cli.models.attention import WindowedSelfAttention
        from avflow_cli.models.dit import DiTBlock

        self._saved = [(WindowedSelfAttention, WindowedSelfAttention.forward), (DiTBlock, DiTBlock.forward)]
        WindowedSelfAttention.forward = authors_attention_forward
        DiTBlock.forward = authors_block_forward

    def __exit__(self, *exc: object) -> None:
        for cls, fn in self._saved:
            cls.forward = fn


def previous_attention_forward(self, x: torch.Tensor, rope=None, key_mask=None) -> torch.Tensor:  # noqa: ANN001
    """avflow's attention before issue 13 (commit f400787^), B = 1, no key mask: RoPE by stacking
    in fp32 per layer, padded copies + unfold of k/v, a boolean block mask built in every layer."""
    import torch.nn.functional as F

    from avflow_cli.models.attention import apply_rope

    B, T, _ = x.shape
    H, Dh, left, right = self.heads, self.head_dim, self.left, self.right
    cos, sin = rope.rope_real
    qkv = self.qkv(x).view(B, T, H, 3 * Dh)
    q, k, v = qkv.split(Dh, dim=-1)
    q, k, v = apply_rope(q, cos, sin).transpose(1, 2), apply_rope(k, cos, sin).transpose(1, 2), v.transpose(1, 2)
    block = max(1, min(self.block, T))
    nb = -(-T // block)
    pad_q, span, pad_right = nb * block - T, block + left + right, nb * block + right - T
    qb = F.pad(q, (0, 0, 0, pad_q)).view(B, H, nb, block, Dh)
    kb = F.pad(k, (0, 0, left, pad_right)).unfold(2, span, block).transpose(-1, -2)
    vb = F.pad(v, (0, 0, left, pad_right)).unfold(2, span, block).transpose(-1, -2)
    dev = x.device
    qi, kj = torch.arange(block, device=dev)[:, None], torch.arange(span, device=dev)[None, :]
    band = (kj >= qi) & (kj <= qi + left + right)
    key_pos = torch.arange(nb, device=dev)[:, None] * block - left + kj
    mask = band[None] & ((key_pos >= 0) & (key_pos < T))[:, None, :]
    mask = (mask | ((torch.arange(nb, device=dev)[:, None] * block + qi[:, 0][None, :]) >= T)[:, :, None])[None]
    out = F.scaled_dot_product_attention(qb.reshape(B * H, nb, block, Dh), kb.reshape(B * H, nb, span, Dh),
                                         vb.reshape(B * H, nb, span, Dh), attn_mask=mask)
    y = out.reshape(B, H, nb * block, Dh)[:, :, :T].transpose(1, 2).reshape(B, T, H * Dh)
    return self.out(y)


class PreviousCode(AuthorsAttention):
    """Context manager: avflow's attention and block as they were before issue 13."""

    def __enter__(self) -> None:
        from avflow_cli.models.attention import WindowedSelfAttention
        from avflow_cli.models.dit import DiTBlock

        self._saved = [(WindowedSelfAttention, WindowedSelfAttention.forward), (DiTBlock, DiTBlock.forward)]
        WindowedSelfAttention.forward = previous_attention_forward
        DiTBlock.forward = authors_block_forward  # the same unfused AdaLN sub-layers as the release


def authors_rows(model, preset: str, repeats: int, device: str, precisions: list[str]) -> list[dict]:
    """Theirs vs ours at 20 s, same weights and precision (both under the same autocast)."""
    frames = K.SEGMENT_FRAMES
    inputs = step_inputs(model, frames, device)
    rows = []
    for prec in precisions:
        ours = step_fn(model, inputs, prec == "bf16", device)

        def theirs(ours=ours) -> torch.Tensor:
            with AuthorsAttention():
                return ours()

        def before(ours=ours) -> torch.Tensor:
            with PreviousCode():
                return ours()

        diff = float((ours().float() - theirs().float()).abs().max())
        diff_before = float((ours().float() - before().float()).abs().max())
        with sampling_context(torch.device(device).type, prec == "bf16"):
            times = alternate({"theirs": theirs, "before": before, "ours": ours}, repeats, device)
        rows.append({"preset": preset, "precision": prec, "frames": frames, "theirs_s": statistics.median(times["theirs"]),
                     "before_s": statistics.median(times["before"]), "ours_s": statistics.median(times["ours"]),
                     "speedup": paired_ratio(times["theirs"], times["ours"]),
                     "speedup_vs_before": paired_ratio(times["before"], times["ours"]),
                     "max_abs_diff": diff, "max_abs_diff_before": diff_before})
    return rows


# ----------------------------------------------------------------------------------------------
# 3. torch.compile
# ----------------------------------------------------------------------------------------------
def compile_row(model, preset: str, repeats: int, device: str) -> dict:
    from avflow_cli.models.compiled import compile_model

    inputs = step_inputs(model, K.SEGMENT_FRAMES, device)
    eager = step_fn(model, inputs, False, device)
    t0 = time.perf_counter()
    net, reason = compile_model(model, inputs)
    compile_s = time.perf_counter() - t0
    if net is None:
        return {"preset": preset, "status": f"fallback to eager: {reason}"}
    comp = step_fn(net, inputs, False, device)
    diff = float((eager() - comp()).abs().max())
    times = alternate({"eager": eager, "compiled": comp}, repeats, device)
    return {"preset": preset, "status": "compiled", "compile_s": compile_s, "eager_s": statistics.median(times["eager"]),
            "compiled_s": statistics.median(times["compiled"]),
            "speedup": paired_ratio(times["eager"], times["compiled"]), "max_abs_diff": diff}


# ----------------------------------------------------------------------------------------------
# 3b. the sampling loop, eager and compiled (CUDA graphs on GPU)
# ----------------------------------------------------------------------------------------------
def sampling_rows(model, preset: str, steps: int, repeats: int, device: str, precisions: list[str]) -> list[dict]:
    """Seconds for ``steps`` Euler steps over 20 s of output (batch 1): eager per precision, then
    compiled (``mode="reduce-overhead"``: CUDA graphs on GPU) in the last precision."""
    from avflow_cli.models.compiled import compile_model
    from avflow_cli.models.flow import euler_sample

    x, _, cond = step_inputs(model, K.SEGMENT_FRAMES, device)
    dev_type = torch.device(device).type
    variants = [(prec, False) for prec in precisions] + [(precisions[-1], True)]
    rows, fns = [], {}
    for prec, comp in variants:
        net, note = model, ""
        if comp:
            t0 = time.perf_counter()
            net, why = compile_model(model, step_inputs(model, K.SEGMENT_FRAMES, device),
                                     mode="reduce-overhead" if dev_type == "cuda" else None, bf16=prec == "bf16")
            if net is None:
                rows.append({"preset": preset, "variant": f"{prec} compiled", "status": f"fallback: {why}"})
                continue
            note = f"compiled in {time.perf_counter() - t0:.0f} s"

        def run(net=net, bf16=prec == "bf16") -> None:
            with sampling_context(dev_type, bf16):
                euler_sample(net, x, cond, steps)

        fns[f"{prec} {'compiled' if comp else 'eager'}"] = run
        rows.append({"preset": preset, "variant": f"{prec} {'compiled' if comp else 'eager'}", "status": note or "ok"})
    times = alternate(fns, repeats, device, warmup=2)
    for r in rows:
        if r["variant"] in times:
            r["seconds"] = statistics.median(times[r["variant"]])
    return rows


# ----------------------------------------------------------------------------------------------
# 4. generate, fresh process per length
# ----------------------------------------------------------------------------------------------
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
    """Subprocess mode: one length; prints JSON {generate_s, peak_mb}."""
    from avflow_cli.models.inference import generate

    model = build_model(args.presets.split(",")[0], args.device)
    tokens = np.random.default_rng(0).normal(size=(int(args.child_seconds * K.FPS), K.TOKEN_DIM)).astype(np.float32)
    generate(model, tokens[:64], steps=1)
    if args.device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    with PeakRSS() as mem:
        sync(args.device)
        t0 = time.perf_counter()
        generate(model, tokens, steps=args.steps, seed=0)
        sync(args.device)
        sec = time.perf_counter() - t0
    peak = (torch.cuda.max_memory_allocated() - base) / 2**20 if args.device.startswith("cuda") else mem.mib
    print(json.dumps({"generate_s": sec, "peak_mb": peak}))


def run_child(args: argparse.Namespace, preset: str, seconds: float) -> dict:
    cmd = [sys.executable, __file__, "--presets", preset, "--steps", str(args.steps), "--device", args.device,
           "--child-seconds", str(seconds)]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode:
        return {"error": res.stderr.strip().splitlines()[-1] if res.stderr.strip() else f"exit {res.returncode}"}
    return json.loads(res.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------------------------
def _right_table(columns: tuple[str, ...], **table_kw: object) -> Table:
    """A rich table whose columns are all right-aligned (numbers line up)."""
    t = Table(**table_kw)
    for col in columns:
        t.add_column(col, justify="right")
    return t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--presets", default="base,release")
    ap.add_argument("--lengths", default="20,60", help="seconds of output for the floor table")
    ap.add_argument("--repeats", type=int, default=5, help="alternating rounds per comparison")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--bf16", choices=("auto", "yes", "no"), default="auto",
                    help="auto: bf16 rows only where a bf16 GEMM is at least as fast as fp32 (native bf16)")
    ap.add_argument("--authors", action="store_true", help="time the authors' dense attention at 20 s")
    ap.add_argument("--no-floor", action="store_true", help="skip the floor table (run only the other items)")
    ap.add_argument("--compile", action="store_true", help="time torch.compile against eager at 20 s")
    ap.add_argument("--sampling", action="store_true",
                    help="time the whole Euler loop (--steps) over 20 s: eager and compiled (CUDA graphs on GPU)")
    ap.add_argument("--generate", default="", help="comma-separated output seconds for full generate() + peak memory")
    ap.add_argument("--steps", type=int, default=8, help="Euler steps for --generate")
    ap.add_argument("--json", default=None, help="also write every row to this JSON file")
    ap.add_argument("--child-seconds", type=float, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child_seconds is not None:
        child(args)
        return
    con = Console(width=160)
    con.print(f"environment: {environment(args.device)}")
    fast16 = bf16_fast(args.device)
    precisions = ["fp32"] + (["bf16"] if args.bf16 == "yes" or (args.bf16 == "auto" and fast16) else [])
    con.print(f"bf16 GEMM {'at least as fast as' if fast16 else 'slower than'} fp32 here; precisions: {', '.join(precisions)}")
    lengths = [float(s) for s in args.lengths.split(",") if s]
    report: dict[str, list] = {"floor": [], "scaling": [], "authors": [], "compile": [], "sampling": [], "generate": []}
    for preset in args.presets.split(","):
        model = build_model(preset, args.device)
        if not args.no_floor:
            report["floor"] += floor_rows(model, preset, lengths, precisions, args.repeats, args.device)
        if len(lengths) > 1:
            report["scaling"].append(scaling_row(model, preset, lengths, args.repeats, args.device))
        if args.authors:
            report["authors"] += authors_rows(model, preset, args.repeats, args.device, precisions)
        if args.compile:
            report["compile"].append(compile_row(model, preset, args.repeats, args.device))
        if args.sampling:
            report["sampling"] += sampling_rows(model, preset, args.steps, args.repeats, args.device, precisions)
        del model
        for sec in [float(s) for s in args.generate.split(",") if s]:
            report["generate"].append({"preset": preset, "seconds": sec, **run_child(args, preset, sec)})

    t = _right_table(("preset", "output", "precision", "GFLOP (counter)", "GEMM share", "step (s)", "GEMMs alone (s)",
                      "GEMM GFLOP/s", "step / GEMMs", "ms per frame", "verdict"),
                     title=f"one Euler step (batch 1) vs its own GEMMs, alternating, median of {args.repeats} rounds",
                     show_edge=bool(report["floor"]))
    for r in report["floor"]:
        t.add_row(r["preset"], f"{r['seconds']:g} s ({r['frames']})", r["precision"], f"{r['gflop']:.1f}",
                  f"{100 * r['gemm_share']:.0f}%", f"{r['step_s']:.3f}", f"{r['gemm_s']:.3f}", f"{r['gflops_rate']:.0f}",
                  f"{r['ratio']:.2f}×", f"{1000 * r['step_s'] / r['frames']:.3f}", r["verdict"])
    if report["floor"]:
        con.print(t)
    for r in report["scaling"]:
        first = lengths[0]
        for sec, per in r["per_frame"].items():
            if sec != first:
                frames = int(round(sec * K.FPS))
                con.print(f"{r['preset']}: one step at {sec:g} s takes {r['seconds'][sec]:.2f} s, at {first:g} s "
                          f"{r['seconds'][first]:.2f} s: time per frame {per:.2f} × (1.00 = linear; the lengths timed "
                          "alternately, fp32)" + ("; the authors' code cannot run this length (RoPE cache 4096)"
                                                  if frames > AUTHORS_MAX_FRAMES else ""))
    if report["authors"]:
        t = _right_table(("preset", "precision", "frames", "theirs (s)", "before (s)", "now (s)", "theirs / now",
                          "before / now", "max |diff| theirs, before", "goal ≥ 3×"),
                         title="one step at 20 s: authors' block (dense T×T attention) / avflow before issue 13 / now; "
                               "same weights, alternating")
        for r in report["authors"]:
            t.add_row(r["preset"], r["precision"], str(r["frames"]), f"{r['theirs_s']:.3f}", f"{r['before_s']:.3f}",
                      f"{r['ours_s']:.3f}", f"{r['speedup']:.2f}×", f"{r['speedup_vs_before']:.2f}×",
                      f"{r['max_abs_diff']:.1e}, {r['max_abs_diff_before']:.1e}",
                      "met" if r["speedup"] >= AUTHORS_GOAL else "not met")
        con.print(t)
    if report["compile"]:
        t = _right_table(("preset", "status", "compile (s)", "eager (s)", "compiled (s)", "speed-up", "max |diff|"),
                         title="torch.compile vs eager at 20 s, fp32, alternating")
        for r in report["compile"]:
            if r["status"] != "compiled":
                t.add_row(r["preset"], r["status"], "-", "-", "-", "-", "-")
            else:
                t.add_row(r["preset"], r["status"], f"{r['compile_s']:.0f}", f"{r['eager_s']:.3f}", f"{r['compiled_s']:.3f}",
                          f"{r['speedup']:.2f}×", f"{r['max_abs_diff']:.1e}")
        con.print(t)
    if report["sampling"]:
        t = _right_table(("preset", "variant", "seconds", "ms per step", "status"),
                         title=f"sampling 20 s of output ({K.SEGMENT_FRAMES} frames), {args.steps} Euler steps, batch 1")
        for r in report["sampling"]:
            sec = r.get("seconds")
            t.add_row(r["preset"], r["variant"], "-" if sec is None else f"{sec:.4f}",
                      "-" if sec is None else f"{1000 * sec / args.steps:.2f}", r["status"])
        con.print(t)
    if report["generate"]:
        t = _right_table(("preset", "output (s)", "generate (s)", "s per output s", "peak memory (MiB)"),
                         title=f"generate() with {args.steps} Euler steps, fresh process each")
        for r in report["generate"]:
            if "error" in r:
                t.add_row(r["preset"], f"{r['seconds']:g}", r["error"], "-", "-")
            else:
                t.add_row(r["preset"], f"{r['seconds']:g}", f"{r['generate_s']:.2f}", f"{r['generate_s'] / r['seconds']:.3f}",
                          f"{r['peak_mb']:.0f}")
        con.print(t)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1, default=str))


if __name__ == "__main__":
    main()
