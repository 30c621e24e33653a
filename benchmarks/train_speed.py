"""Training speed of AV-Flow: steps/s, peak memory and model FLOP utilisation (MFU).

    python benchmarks/train_speed.py [--device cpu|cuda] [--presets tiny,base] [--steps 3]

One training step = OT-CFM loss, backward, AdamW update, on random data of the preset's shape
(the data loader is not timed). MFU = model FLOPs per second (3 × forward: forward + backward)
divided by the GEMM rate measured in the same run at the model's shapes and precision.
Defaults: on CPU, ``tiny`` at its preset batch and ``base`` at 1 × 1722 frames (the paper's
16 × 1722 would take minutes per step on 2 cores); on CUDA, both at the paper's 16 × 1722 in
bf16 autocast (and fp32 for comparison).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "2")

import torch  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from sample_speed import PeakRSS, gemm_rate, step_flops  # noqa: E402

from avflow_cli import constants as K  # noqa: E402


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

    def one_step() -> None:
        with torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=bf16):
            loss, _ = flow_loss(net, cfg, x1, cond, valid, LossWeights())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    one_step()  # warm-up (and compilation)
    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    with PeakRSS() as mem:
        t0 = time.perf_counter()
        for _ in range(steps):
            one_step()
        if cuda:
            torch.cuda.synchronize()
        sec = (time.perf_counter() - t0) / steps
    peak = (torch.cuda.max_memory_allocated() - base) / 2**20 if cuda else mem.mib
    flops = 3 * step_flops(model, frames) * batch
    rate = gemm_rate(model, frames * min(batch, 4), torch.bfloat16 if bf16 else torch.float32, device)
    return {"params": sum(p.numel() for p in model.parameters()), "steps_per_s": 1 / sec, "peak_mb": peak,
            "tflops": flops / sec / 1e12, "gemm_tflops": rate / 1e12, "mfu": flops / sec / rate}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cuda = torch.cuda.is_available()
    ap.add_argument("--device", default="cuda" if cuda else "cpu")
    ap.add_argument("--presets", default="tiny,base")
    ap.add_argument("--steps", type=int, default=3, help="timed steps per configuration (after one warm-up)")
    ap.add_argument("--base-batch", type=int, default=None, help="batch for base (default 16 on GPU, 1 on CPU)")
    ap.add_argument("--compile", action="store_true", help="torch.compile the model")
    args = ap.parse_args()
    con = Console(width=150)
    on_gpu = args.device.startswith("cuda")
    con.print(f"device {args.device} ({torch.cuda.get_device_name() if on_gpu else torch.backends.cpu.get_cpu_capability()}), "
              f"{torch.get_num_threads()} threads")
    table = Table(title="AV-Flow training step (loss + backward + AdamW)")
    for col in ("preset", "params (M)", "batch × frames", "precision", "steps/s", "model TFLOP/s", "GEMM TFLOP/s", "MFU",
                "peak memory (MiB)"):
        table.add_column(col, justify="right")
    for preset in args.presets.split(","):
        from avflow_cli.models.config import avflow_preset

        _, tcfg = avflow_preset(preset)
        if preset == "tiny":
            batch, frames = tcfg.batch_size, tcfg.segment_frames
        else:
            batch = args.base_batch or (16 if on_gpu else 1)
            frames = K.SEGMENT_FRAMES
        precisions = ["bf16", "fp32"] if on_gpu else ["fp32"]
        for prec in precisions:
            r = measure(preset, batch, frames, args.steps, args.device, prec == "bf16", args.compile)
            table.add_row(preset, f"{r['params'] / 1e6:.1f}", f"{batch} × {frames}", prec, f"{r['steps_per_s']:.3f}",
                          f"{r['tflops']:.3f}", f"{r['gemm_tflops']:.3f}", f"{100 * r['mfu']:.0f}%", f"{r['peak_mb']:.0f}")
    con.print(table)


if __name__ == "__main__":
    main()
