"""Synthesis speed: time vs text length and per-stage timing (text-to-tokens, AV-Flow, vocoder).

Usage: python benchmarks/synth_speed.py [--model demo_out/models/avflow] [--sentences 1 2 4 8]

Needs a trained model directory (``make demo`` builds one). Prints one row per text length:
characters, seconds of speech, seconds per stage and the real-time factor (compute seconds
per second of speech, preview excluded). Linear scaling shows as a constant RTF.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from avflow_cli.synth import DEMO_MODEL_DIR, Synthesizer

SENTENCES = [
    "The birch canoe slid on the smooth planks.",
    "Glue the sheet to the dark blue background.",
    "It's easy to tell the depth of a well.",
    "These days a chicken leg is a rare dish.",
    "Rice is often served in round bowls.",
    "The juice of lemons makes fine punch.",
    "The box was thrown beside the parked truck.",
    "The hogs were fed chopped corn and garbage.",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=DEMO_MODEL_DIR)
    parser.add_argument("--sentences", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    synth = Synthesizer(args.model, device="cpu")
    synth.synthesize(SENTENCES[0], steps=args.steps)  # warm-up: first-call allocations, lazy inits
    table = Table(title=f"avflow synth speed ({args.threads} threads, {args.steps} Euler steps, vocoder {synth.components['vocoder']})")
    for column in ("sentences", "chars", "speech (s)", "t2t (s)", "avflow (s)", "head VAE (s)", "vocoder (s)", "total (s)", "RTF"):
        table.add_column(column, justify="right")
    for n in args.sentences:
        text = " ".join((SENTENCES * (n // len(SENTENCES) + 1))[:n])
        start = time.perf_counter()
        result = synth.synthesize(text, steps=args.steps)
        total = time.perf_counter() - start
        t = result.timings
        table.add_row(str(n), str(len(text)), f"{result.seconds:.2f}", f"{t['t2t']:.2f}", f"{t['avflow']:.2f}",
                      f"{t.get('head_vae', 0.0):.3f}", f"{t['vocoder']:.2f}", f"{total:.2f}", f"{result.real_time_factor:.2f}")
    Console().print(table)


if __name__ == "__main__":
    main()
