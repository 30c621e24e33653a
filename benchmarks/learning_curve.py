"""Learning curve: intelligibility (WER) and lip-sync (F1 within speech) against training steps.

Usage:
    python benchmarks/learning_curve.py [--demo demo_out] [--out demo_out/curve]
        [--avflow-steps 500 1000 2000] [--t2t-steps 500 1000 2000] [--preset small] [--t2t-preset tiny]
        [--config dyadic] [--set model.depth=4 ...] [--t2t-set ...]

Needs the built-in demo's prepared data (``make demo`` or ``avflow demo`` leaves the shards, the
head-pose VAE and the text-to-tokens corpus under ``--demo``). Two curves, so a user sees which
component limits quality and what a budget buys:

1. **tokens → AV-Flow**: AV-Flow trained on the shards, probed after each budget in
   ``--avflow-steps`` on held-out everyday sentences from their *true* tokens
   (``avflow_cli.metrics.probe``): WER of the vocoded speech and lip-closure F1 within speech.
2. **text → tokens → AV-Flow**: text-to-tokens trained on the demo's LJSpeech export, probed after
   each budget in ``--t2t-steps`` through ``Synthesizer`` with the final AV-Flow of curve 1: WER,
   and the token CER of text-to-tokens alone (its tokens greedily decoded against the text).

Each budget continues the same run (``--resume``), so the curve costs the largest budget once
(plus probing). Rows print as they finish and are written to ``OUT/learning_curve.json`` and
``OUT/learning_curve.md``; a re-run skips budgets already measured. The ceiling (flite's own
audio, and its mel through the same vocoder) is measured once and printed with the table.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

console = Console()


def avflow(*args: str) -> None:
    """Run one ``avflow`` command (this interpreter's), failing loudly."""
    cmd = [sys.executable, "-m", "avflow_cli.cli.main", *args]
    console.print(f"[dim]$ avflow {' '.join(args)}[/]")
    subprocess.run(cmd, check=True)


def train_to(kind: str, data: Path, run: Path, steps: int, preset: str, overrides: list[str], extra: list[str]) -> float:
    """Train (or continue) ``run`` up to ``steps``; return the wall seconds it took."""
    start = time.perf_counter()
    args = ["train", kind, "--data", str(data), "--out", str(run), "--preset", preset, "--steps", str(steps), "--device", "cpu"]
    for item in overrides:
        args += ["--set", item]
    if (run / "train_state.pt").is_file():
        args.append("--resume")
    avflow(*args, *extra)
    return time.perf_counter() - start


def _vocoder():
    from avflow_cli.audio.vocoder import load_vocoder

    voc = load_vocoder("auto")

    def vocode(mel: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return voc(torch.as_tensor(mel, dtype=torch.float32)[None])[0].float().numpy()

    return voc.name, vocode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--demo", type=Path, default=Path("demo_out"), help="Output folder of `avflow demo`.")
    parser.add_argument("--out", type=Path, default=None, help="Where the curve's runs go (default DEMO/curve).")
    parser.add_argument("--avflow-steps", type=int, nargs="*", default=[500, 1000, 2000])
    parser.add_argument("--t2t-steps", type=int, nargs="*", default=[500, 1000, 2000])
    parser.add_argument("--preset", default="small", help="AV-Flow preset (default: small, the demo model's).")
    parser.add_argument("--t2t-preset", default="tiny", help="Text-to-tokens preset (default: tiny).")
    parser.add_argument("--config", default=None, help="AV-Flow packaged config (e.g. dyadic, as the demo trains).")
    parser.add_argument("--set", dest="avflow_set", action="append", default=[], help="AV-Flow override, repeatable.")
    parser.add_argument("--t2t-set", action="append", default=[], help="Text-to-tokens override, repeatable.")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from avflow_cli.metrics.face_decoder import load_mouth_decoder
    from avflow_cli.metrics.probe import make_probe_items, reference_scores, score_text_path, score_tokens_path, token_cer
    from avflow_cli.synth import Synthesizer

    demo, out = args.demo, args.out or args.demo / "curve"
    shards, headvae, lj = demo / "prep" / "shards", demo / "models" / "headvae", demo / "corpus" / "ljspeech"
    for need in (shards / "index.json", headvae / "config.json", lj / "tokens"):
        if not need.exists():
            sys.exit(f"{need}: missing; run `make demo` (or `avflow demo --out {demo}`) first")
    out.mkdir(parents=True, exist_ok=True)
    results_path = out / "learning_curve.json"
    results = json.loads(results_path.read_text()) if results_path.is_file() else {"avflow": {}, "t2t": {}}

    def save() -> None:
        results_path.write_text(json.dumps(results, indent=1))

    items = make_probe_items()
    vocoder_name, vocode = _vocoder()
    if "reference" not in results:
        results["reference"] = reference_scores(items, vocode)
        save()

    av_run = out / "avflow"
    for steps in sorted(args.avflow_steps):
        if str(steps) in results["avflow"]:
            continue
        seconds = train_to("avflow", shards, av_run, steps, args.preset, args.avflow_set, ["--head-vae", str(headvae)] + (["--config", args.config] if args.config else []))
        synth = Synthesizer(av_run, head_vae=headvae, device="cpu")  # tokens in: no text-to-tokens needed
        scores = score_tokens_path(synth, items, load_mouth_decoder(av_run / "face_decoder.npz"))
        results["avflow"][str(steps)] = {"wer": scores.wer, "lip_f1_speech": scores.lip_f1_speech, "train_s": seconds}
        save()
        console.print(f"AV-Flow {steps} steps: WER {scores.wer:.3f}, lip F1 (speech) {scores.lip_f1_speech:.3f}")

    t2t_run = out / "t2t"
    for steps in sorted(args.t2t_steps):
        if str(steps) in results["t2t"]:
            continue
        seconds = train_to("t2t", lj, t2t_run, steps, args.t2t_preset, args.t2t_set, [])
        synth = Synthesizer(av_run, t2t=t2t_run, head_vae=headvae, device="cpu")
        scores = score_text_path(lambda text, seed: synth.synthesize(text, seed=seed).wav, items)
        cer = token_cer(lambda text, seed: synth.text_to_tokens(text, seed=seed), items)
        results["t2t"][str(steps)] = {"wer": scores.wer, "token_cer": cer, "train_s": seconds,
                                      "avflow_steps": max(args.avflow_steps)}
        save()
        console.print(f"text-to-tokens {steps} steps: WER {scores.wer:.3f}, token CER {cer:.3f}")

    ref = results["reference"]
    table = Table(title=f"learning curve (AV-Flow {args.preset}, text-to-tokens {args.t2t_preset}, {len(items)} held-out sentences, vocoder {vocoder_name}; "
                        f"ceiling WER: flite {ref['flite']:.2f}, flite mel → vocoder {ref['flite_vocoded']:.2f})")
    for column in ("path", "steps", "train time (s)", "WER", "lip F1 in speech", "token CER"):
        table.add_column(column, justify="right")
    lines = ["| path | steps | train time (s) | WER | lip F1 in speech | token CER |", "|---|---|---|---|---|---|"]
    for path, key in (("tokens → AV-Flow", "avflow"), ("text → tokens → AV-Flow", "t2t")):
        for steps, row in sorted(results[key].items(), key=lambda kv: int(kv[0])):
            f1, cer = row.get("lip_f1_speech"), row.get("token_cer")
            cells = [path, steps, f"{row['train_s']:.0f}", f"{row['wer']:.3f}", "–" if f1 is None else f"{f1:.3f}",
                     "–" if cer is None else f"{cer:.3f}"]
            table.add_row(*cells)
            lines.append("| " + " | ".join(cells) + " |")
    console.print(table)
    (out / "learning_curve.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
