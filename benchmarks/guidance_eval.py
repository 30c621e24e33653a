"""The listening table (paper Fig. 7 as a table): smile-return F1 and BC_h while listening, with and
without participant guidance, audio-only and visual-only.

    python benchmarks/guidance_eval.py --model pretrained --data demo_out/prep/shards \\
        [--split test] [--clips N] [--frames N] [--steps N] [--seed N] [--temperature T] [--out table.md]

Works on any model directory trained with guidance (configs/dyadic.toml) and a shard directory
whose clips carry p_tokens / p_smirk; definitions in avflow_cli/participant/evaluate.py. Prints a
markdown table (and writes it with the JSON results beside it when --out is given).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "2")

from avflow_cli.participant.evaluate import guidance_markdown, guidance_table  # noqa: E402
from avflow_cli.synth import Synthesizer  # noqa: E402


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="model directory or shipped name (default: $AVFLOW_MODEL, else pretrained)")
    ap.add_argument("--data", type=Path, required=True, help="shard directory (index.json + shards)")
    ap.add_argument("--split", default="test")
    ap.add_argument("--clips", type=int, default=None)
    ap.add_argument("--frames", type=int, default=None, help="only the first N frames of each clip")
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--temperature", type=float, default=None, help="AV-Flow sampling temperature (default: the model's)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", type=Path, default=None, help="write the markdown table here (+ .json beside it)")
    args = ap.parse_args(argv)
    synth = Synthesizer(args.model, vocoder="griffinlim", device=args.device,  # no audio is generated here
                        temperature=args.temperature)
    res = guidance_table(synth, args.data, split=args.split, max_clips=args.clips, max_frames=args.frames,
                         seed=args.seed, steps=args.steps)
    table = guidance_markdown(res)
    print(f"model {res['model']}, {res['clips']} {res['split']} clips, {res['steps']} Euler steps, seed {res['seed']}, "
          f"temperature {res['temperature']}\n")
    print(table)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(table + "\n")
        args.out.with_suffix(".json").write_text(json.dumps(res, indent=1))
    return res


if __name__ == "__main__":
    main()
