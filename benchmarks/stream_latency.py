"""Streaming latency: time to first audio and sustained real-time factor vs chunk size, per schedule.

    python benchmarks/stream_latency.py [--model DIR | --random-preset tiny] [--vocoders hifigan,student]
                                        [--chunks 8 16 32 64] [--schedules exact low-latency]
                                        [--sentences 4] [--threads 2] [--device cpu]

For each vocoder, schedule and chunk size, ``Synthesizer.stream`` runs over the same text and the
table reports: time to first audio (text-to-tokens included: what a user waits), time to first
motion, sustained RTF (stream compute seconds per second of speech) and, for reference, the
offline ``synthesize`` RTF measured in the same run. ``--random-preset`` builds a random model of
the demo recipe's shape (speed does not depend on the weights; see benchmarks/synth_speed.py).
The exact schedule's look-ahead (steps × depth × window_right frames) is printed per preset.
Goals (issue 10): sustained RTF < 1 with the demo model on 2 CPU cores, vocoder included; first
audio ≤ 150 ms on a GPU (``--random-preset base --device cuda``).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "2")

import torch  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from synth_speed import SENTENCES, random_demo_models, student_folder  # noqa: E402

from avflow_cli import constants as K  # noqa: E402
from avflow_cli.models.streaming import exact_lookahead, receptive_field  # noqa: E402
from avflow_cli.errors import AvflowError  # noqa: E402
from avflow_cli.shipped import DEFAULT_MODEL, resolve_model  # noqa: E402
from avflow_cli.synth import Synthesizer  # noqa: E402


def run_stream(synth: Synthesizer, text: str, schedule: str, chunk: int, steps: int | None) -> dict[str, float]:
    start = time.perf_counter()
    samples = 0
    for c in synth.stream(text, schedule=schedule, chunk_frames=chunk, steps=steps):
        samples += len(c.wav)
    total = time.perf_counter() - start
    st = synth.last_stream
    return {"first_audio": st.first_audio_s or float("nan"), "first_motion": st.first_motion_s or float("nan"),
            "rtf": total / (samples / synth.vocoder.sample_rate), "seconds": samples / synth.vocoder.sample_rate}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=None, help=f"model directory or shipped name (default: $AVFLOW_MODEL, else {DEFAULT_MODEL})")
    ap.add_argument("--random-preset", default=None, help="tiny | small | base: a random model of the demo's shape")
    ap.add_argument("--vocoders", default="hifigan,student")
    ap.add_argument("--student", default=None)
    ap.add_argument("--chunks", type=int, nargs="+", default=[8, 16, 32, 64])
    ap.add_argument("--schedules", nargs="+", default=["exact", "low-latency"])
    ap.add_argument("--sentences", type=int, default=4)
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    con = Console(width=150)
    text = " ".join((SENTENCES * (args.sentences // len(SENTENCES) + 1))[: args.sentences])
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        try:
            model = random_demo_models(tmp, args.random_preset) if args.random_preset else resolve_model(args.model)
        except AvflowError as err:
            sys.exit(str(err))
        if not (Path(model) / "config.json").is_file():
            sys.exit(f"{model}: no model; build the demo (make demo) or pass --random-preset tiny")
        student, note = student_folder(args.student, tmp) if "student" in args.vocoders else (None, "")
        table = Table(title=f"avflow synth --stream: {args.sentences} sentences, {torch.get_num_threads()} threads, {args.device}")
        for col in ("vocoder", "schedule", "chunk (frames)", "chunk (ms)", "first audio (ms)", "first motion (ms)",
                    "sustained RTF", "offline RTF"):
            table.add_column(col, justify="right")
        for name in args.vocoders.split(","):
            synth = Synthesizer(model, vocoder=name, vocoder_checkpoint=student if name == "student" else None,
                                device=args.device)
            cfg = synth.model.config
            steps = cfg.steps if args.steps is None else args.steps
            synth.synthesize(SENTENCES[0], steps=steps)  # warm-up
            start = time.perf_counter()
            offline = synth.synthesize(text, steps=steps)
            offline_rtf = (time.perf_counter() - start) / offline.seconds
            for schedule in args.schedules:
                for chunk in args.chunks:
                    r = run_stream(synth, text, schedule, chunk, steps)
                    table.add_row(name, schedule, str(chunk), f"{chunk / K.FPS * 1000:.0f}", f"{r['first_audio'] * 1000:.0f}",
                                  f"{r['first_motion'] * 1000:.0f}", f"{r['rtf']:.3f}", f"{offline_rtf:.3f}")
        rf = receptive_field(cfg)
        con.print(f"model {model} ({'random ' + args.random_preset if args.random_preset else 'trained'}, "
                  f"{synth.model.num_parameters() / 1e6:.2f} M parameters, {steps} Euler steps, depth {cfg.depth}, "
                  f"window {cfg.window_left}+1+{cfg.window_right}); speech {offline.seconds:.1f} s; {note}")
        con.print(f"exact look-ahead: {exact_lookahead(cfg, steps)} frames = {exact_lookahead(cfg, steps) / K.FPS * 1000:.0f} ms "
                  f"of input (receptive field per network pass: {rf.left} past, {rf.right} future)")
        con.print(table)


if __name__ == "__main__":
    main()
