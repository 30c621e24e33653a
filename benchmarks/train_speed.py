"""Training speed of AV-Flow: steps/s, peak memory and model FLOP utilisation (MFU), eager and compiled.

    python benchmarks/train_speed.py [--device cpu|cuda] [--presets tiny,base] [--steps 5]
                                     [--compile no|yes|both] [--precisions bf16,fp32] [--base-batch 16]

One training step = OT-CFM loss, backward, AdamW update, on random data of the preset's shape
(the data loader is not timed). Model FLOPs per step are counted by
``torch.utils.flop_counter.FlopCounterMode`` on the real step (forward + backward). MFU =
model FLOP/s ÷ the device's dense peak for that precision (CUDA: a table of known GPUs, e.g.
H100 SXM bf16 989 TFLOP/s); the table also shows the share of the rate of the step's own GEMMs
replayed alone, timed alternately with the step (what this machine could do at these shapes).
Defaults: on CPU, ``tiny`` at its preset batch and ``base`` at 1 × 1722 frames, fp32, eager; on
CUDA, both at 16 × 1722 frames in bf16 autocast, eager and ``torch.compile``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "2")

import torch  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from floor import GemmReplay, alternate, count_flops, record_gemms, sync  # noqa: E402
from sample_speed import PeakRSS, environment  # noqa: E402

from avflow_cli import constants as K  # noqa: E402

# dense (no sparsity) peak TFLOP/s: (bf16/fp16 tensor cores, fp32 non-tensor) by device-name substring
PEAKS = [("H200", 989.0, 67.0), ("H100 SXM", 989.0, 67.0), ("H100 NVL", 835.0, 60.0), ("H100 PCIe", 756.0, 51.0),
         ("H100", 989.0, 67.0), ("A100", 312.0, 19.5), ("L40S", 362.0, 91.6), ("A10G", 70.0, 31.2),
         ("A10", 125.0, 31.2), ("RTX 4090", 165.0, 82.6), ("V100", 125.0, 15.7)]


def device_peak(device: str, bf16: bool) -> float | None:
    """Peak FLOP/s of this GPU for the precision, None when unknown (CPU, unlisted GPU)."""
    if not device.startswith("cuda"):
        return None
    name = torch.cuda.get_device_name()
    for key, half, single in PEAKS:
        if key in name:
            return (half if bf16 else single) * 1e12
    return None


def measure(preset: str, batch: int, frames: int, steps: int, device: str, bf16: bool, compile_: bool) -> dict:
    from avflow_cli.models.avflow import AVFlow
    from avflow_cli.models.config import avflow_preset
    from avflow_cli.models.flow import LossWeights, flow_loss

    cfg, _ = avflow_preset(preset)
    torch.manual_seed(0)
    model = AVFlow(cfg).to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.98), eps=1e-9)
    net = torch.compile(model) if compile_ else model
    x1 = torch.randn(batch, frames, cfg.x_dim, device=device)
    cond = torch.randn(batch, frames, cfg.cond_dim, device=device)
    valid = torch.ones(batch, frames, dtype=torch.bool, device=device)
    dev_type = torch.device(device).type

    def fwd_bwd(m) -> None:
        with torch.autocast(dev_type, dtype=torch.bfloat16, enabled=bf16):
            loss, _ = flow_loss(m, cfg, x1, cond, valid, LossWeights())
        opt.zero_grad(set_to_none=True)
        loss.backward()

    def one_step() -> None:
        fwd_bwd(net)
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    flops, _ = count_flops(lambda: fwd_bwd(model))  # eager: the counter sees every aten op
    replay = GemmReplay(record_gemms(lambda: fwd_bwd(model)))
    t0 = time.perf_counter()
    one_step()  # warm-up (and compilation)
    sync(device)
    warm_s = time.perf_counter() - t0
    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    with PeakRSS() as mem:
        times = alternate({"step": one_step, "gemm": replay}, steps, device, warmup=0)
    sec = statistics.median(times["step"])
    gemm_rate = replay.flops / statistics.median(times["gemm"])
    peak_mb = (torch.cuda.max_memory_allocated() - base) / 2**20 if cuda else mem.mib
    peak = device_peak(device, bf16)
    return {"params": sum(p.numel() for p in model.parameters()), "steps_per_s": 1 / sec, "peak_mb": peak_mb,
            "tflops": flops / sec / 1e12, "gemm_tflops": gemm_rate / 1e12, "of_gemm": flops / sec / gemm_rate,
            "mfu": None if peak is None else flops / sec / peak, "first_step_s": warm_s, "gflop_per_step": flops / 1e9}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cuda = torch.cuda.is_available()
    ap.add_argument("--device", default="cuda" if cuda else "cpu")
    ap.add_argument("--presets", default="tiny,base")
    ap.add_argument("--steps", type=int, default=5, help="timed steps per configuration (after one warm-up)")
    ap.add_argument("--base-batch", type=int, default=None, help="batch for base (default 16 on GPU, 1 on CPU)")
    ap.add_argument("--compile", choices=("no", "yes", "both"), default=None, help="default: both on GPU, no on CPU")
    ap.add_argument("--precisions", default=None, help="default: bf16 on GPU, fp32 on CPU")
    args = ap.parse_args()
    con = Console(width=160)
    on_gpu = args.device.startswith("cuda")
    con.print(f"environment: {environment(args.device)}")
    compile_modes = {"no": [False], "yes": [True], "both": [False, True]}[args.compile or ("both" if on_gpu else "no")]
    precisions = (args.precisions or ("bf16" if on_gpu else "fp32")).split(",")
    table = Table(title="AV-Flow training step (loss + backward + AdamW), median of alternating runs")
    for col in ("preset", "params (M)", "batch × frames", "precision", "compile", "first step (s)", "steps/s",
                "GFLOP/step", "model TFLOP/s", "MFU (of peak)", "of own GEMMs", "peak memory (MiB)"):
        table.add_column(col, justify="right")
    for preset in args.presets.split(","):
        from avflow_cli.models.config import avflow_preset

        _, tcfg = avflow_preset(preset)
        if preset == "tiny":
            batch, frames = tcfg.batch_size, tcfg.segment_frames
        else:
            batch = args.base_batch or (16 if on_gpu else 1)
            frames = K.SEGMENT_FRAMES
        for prec in precisions:
            for comp in compile_modes:
                try:
                    r = measure(preset, batch, frames, args.steps, args.device, prec == "bf16", comp)
                except Exception as err:  # noqa: BLE001 - one failing configuration must not hide the others
                    table.add_row(preset, "-", f"{batch} × {frames}", prec, "yes" if comp else "no",
                                  f"FAILED: {type(err).__name__}: {str(err).splitlines()[0][:60] if str(err) else ''}",
                                  *["-"] * 6)
                    continue
                mfu = "n/a" if r["mfu"] is None else f"{100 * r['mfu']:.1f}%"
                table.add_row(preset, f"{r['params'] / 1e6:.1f}", f"{batch} × {frames}", prec, "yes" if comp else "no",
                              f"{r['first_step_s']:.1f}", f"{r['steps_per_s']:.3f}", f"{r['gflop_per_step']:.0f}",
                              f"{r['tflops']:.3f}", mfu, f"{100 * r['of_gemm']:.0f}%", f"{r['peak_mb']:.0f}")
    con.print(table)


if __name__ == "__main__":
    main()
