"""Low-latency streaming vs offline on the test clips: MCD, lip F1 and WER deltas (issue 10).

    python benchmarks/stream_quality.py --model pretrained --data demo_out/prep/shards \\
        [--chunk 16] [--lookahead default 8 4] [--clips N] [--frames N] [--no-wer] [--no-exact] \\
        [--reference-seed 1] [--temperature T] [--vocoder hifigan] [--json out.json]

Each clip is generated from its own tokens (and participant streams, when the model reads them)
offline and with the low-latency schedule at every look-ahead given (``default`` = one network's
receptive field, depth × window_right frames); all are scored against the ground truth (MCD with
DTW, lip-closure F1 through the face decoder, WER with the offline ASR against the actor's words
in the clip). The table shows each output's scores, its delta to offline and its MCD to the
offline output; ``--reference-seed`` adds offline with another seed, i.e. how much the numbers
move with no streaming at all (a low-latency delta inside that is noise). The exact schedule's
largest mel deviation from offline (float rounding, ~1e-6) is checked unless ``--no-exact``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "2")

from avflow_cli import constants as K  # noqa: E402
from avflow_cli.participant.evaluate import METRICS, stream_quality  # noqa: E402
from avflow_cli.synth import Synthesizer  # noqa: E402


def fmt(x: float | None, nd: int = 3, sign: bool = False) -> str:
    return "—" if x is None else f"{x:+.{nd}f}" if sign else f"{x:.{nd}f}"


def lookahead_arg(value: str) -> int | None:
    """``default`` (None: the model's receptive field) or a number of frames ≥ 0."""
    if value == "default":
        return None
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"look-ahead must be 'default' or a number of frames, got {value!r}") from None
    if n < 0:
        raise argparse.ArgumentTypeError(f"look-ahead must be ≥ 0 frames, got {n}")
    return n


def markdown(res: dict) -> str:
    """The table for docs/: one row per output, metric (delta to offline)."""
    lines = ["| output | latency (model) | MCD (dB) | lip F1 | WER | MCD to offline (dB) |", "|---|---|---|---|---|---|"]
    for row in res["rows"]:
        lat = f"{row['latency_frames']} fr = {row['latency_frames'] / K.FPS * 1000:.0f} ms" if "latency_frames" in row else "whole text"
        cells = []
        for k in METRICS:
            cell = fmt(row[k])
            if row.get("delta", {}).get(k) is not None:
                cell += f" ({fmt(row['delta'][k], sign=True)})"
            cells.append(cell)
        lines.append(f"| {row['name']} | {lat} | {' | '.join(cells)} | {fmt(row['MCD_vs_offline'])} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="model directory or shipped name (default: $AVFLOW_MODEL, else pretrained)")
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--split", default="test")
    ap.add_argument("--chunk", type=int, default=16)
    ap.add_argument("--lookahead", type=lookahead_arg, nargs="+", default=[None],
                    help="one or more look-aheads in frames, or 'default' (the receptive field)")
    ap.add_argument("--clips", type=int, default=None)
    ap.add_argument("--frames", type=int, default=None)
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--reference-seed", type=int, default=None, help="also score offline with this seed (noise floor)")
    ap.add_argument("--temperature", type=float, default=None, help="AV-Flow sampling temperature (default: the model's)")
    ap.add_argument("--vocoder", default="auto")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--no-wer", action="store_true")
    ap.add_argument("--no-exact", action="store_true", help="skip the exact schedule's equality check")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    synth = Synthesizer(args.model, vocoder=args.vocoder, device=args.device, temperature=args.temperature)
    res = stream_quality(synth, args.data, split=args.split, max_clips=args.clips, max_frames=args.frames,
                         chunk=args.chunk, lookaheads=args.lookahead, seed=args.seed, steps=args.steps,
                         wer=not args.no_wer, exact=not args.no_exact, reference_seed=args.reference_seed)
    res["wall_s"] = round(time.perf_counter() - t0, 1)
    res["threads"] = int(os.environ.get("OMP_NUM_THREADS", "0") or 0)
    print(f"model {res['model']}, {res['clips']} {res['split']} clips ({res['frames']} frames), chunk "
          f"{res['chunk']} frames, default look-ahead {res['default_lookahead']}, {res['steps']} Euler steps, "
          f"temperature {res['temperature']}, vocoder {res['vocoder']}, {res['wall_s']} s\n")
    print(markdown(res))
    if res["exact_max_abs_mel_deviation"] is not None:
        print(f"\nexact schedule: max |Δmel| vs offline {res['exact_max_abs_mel_deviation']:.2e}")
    if args.json:
        args.json.write_text(json.dumps(res, indent=1))
    return res


if __name__ == "__main__":
    main()
