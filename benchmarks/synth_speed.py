"""Synthesis speed: end-to-end real-time factor per vocoder, timed alternately, with per-stage timing.

    python benchmarks/synth_speed.py [--model pretrained|DIR | --random-preset small]
                                     [--vocoders hifigan,student] [--sentences 1 4] [--repeats 3]
                                     [--threads 2] [--device cpu]

``--model``: a trained model directory or a shipped name (default: ``$AVFLOW_MODEL``, else the
shipped ``pretrained``). ``--random-preset``: a random
model family with the demo recipe's architecture instead (AV-Flow ``small`` or ``tiny`` on the
9-d demo face codes with participant guidance, text-to-tokens ``tiny``): speed does not depend on
the weights, so this measures the demo model's speed where none is built. ``student`` uses the
shipped student (``--student DIR`` for another; a random one of the default size when none
exists, said in the output). For each text length, every vocoder runs ``Synthesizer.synthesize``
in turn (hifigan, student, hifigan, …) and the median is kept; RTF = compute seconds per second
of speech (text-to-tokens + AV-Flow + head VAE + vocoder; no files, no preview); the CPU
seconds per speech second (all threads) are shown too, since wall time on a shared machine
mostly measures the other jobs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "2")

import torch  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from avflow_cli.errors import AvflowError  # noqa: E402
from avflow_cli.shipped import DEFAULT_MODEL, resolve_model  # noqa: E402
from avflow_cli.synth import Synthesizer  # noqa: E402

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


def random_demo_models(root: Path, preset: str) -> Path:
    """AV-Flow ``preset`` + t2t ``tiny`` with the demo's streams, random weights; the AV-Flow dir."""
    from avflow_cli.models.avflow import AVFlow
    from avflow_cli.models.config import avflow_preset
    from avflow_cli.models.normalize import Normalizer, model_streams
    from avflow_cli.models.registry import save_model_dir
    from avflow_cli.models.text2tokens import TextToTokens, save_t2t
    from avflow_cli.models.text2tokens import preset as t2t_preset
    from avflow_cli.render.demo_avatar import FACE_DECODER_FILE, FaceDecoder

    decoder = FaceDecoder.create()
    source = "alignment (alignment)"
    cfg, _ = avflow_preset(preset)
    cfg.face_dim, cfg.participant_tokens, cfg.participant_visual_dim, cfg.token_source = decoder.dim, True, 56, source
    cfg.validate()
    torch.manual_seed(0)
    dims = {"face": cfg.face_dim, "head": cfg.head_dim, "mel": cfg.mel_dim, "tokens": cfg.token_dim,
            "p_tokens": cfg.token_dim, "p_smirk": cfg.participant_visual_dim}
    norm = Normalizer.identity({k: dims[k] for k in model_streams(cfg)})
    model_dir = root / "models" / "avflow"
    save_model_dir(model_dir, "avflow", cfg, AVFlow(cfg).state_dict(), norm.to_json(), preset=preset,
                   components={"t2t": "../t2t"})
    save_t2t(root / "models" / "t2t", TextToTokens(t2t_preset("tiny", token_source=source)).eval())
    decoder.save(model_dir / FACE_DECODER_FILE)
    return model_dir


def student_folder(arg: str | None, tmp: Path) -> tuple[Path, str]:
    from avflow_cli.audio.student_vocoder import CONFIG_FILE, StudentGenerator, save_student, shipped_student_dir

    if arg:
        return Path(arg), arg
    if (shipped_student_dir() / CONFIG_FILE).is_file():
        return shipped_student_dir(), "shipped"
    torch.manual_seed(0)
    save_student(StudentGenerator(), tmp / "student")
    return tmp / "student", "random weights (none shipped): speed only"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=None, help=f"model directory or shipped name (default: $AVFLOW_MODEL, else {DEFAULT_MODEL})")
    ap.add_argument("--random-preset", default=None, help="small | tiny: a random model family of the demo's shape")
    ap.add_argument("--vocoders", default="hifigan,student")
    ap.add_argument("--student", default=None, help="student folder (default: the shipped one)")
    ap.add_argument("--sentences", type=int, nargs="+", default=[1, 4])
    ap.add_argument("--steps", type=int, default=None, help="Euler steps (default: the model's)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    con = Console(width=150)
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        model = args.model
        if args.random_preset:
            model = random_demo_models(tmp, args.random_preset)
        else:
            try:
                model = resolve_model(model)  # the shipped model unless named (one rule: avflow_cli/shipped.py)
            except AvflowError as err:
                sys.exit(str(err))
        if not (Path(model) / "config.json").is_file():
            sys.exit(f"{model}: no model here; build the demo (make demo) or pass --random-preset small")
        student, student_note = student_folder(args.student, tmp)
        synths = {}
        for name in args.vocoders.split(","):
            ckpt = student if name == "student" else None
            synths[name] = Synthesizer(model, vocoder=name, vocoder_checkpoint=ckpt, device=args.device)
            synths[name].synthesize(SENTENCES[0], steps=args.steps)  # warm-up
        first = next(iter(synths.values()))
        con.print(f"model {model} ({'random ' + args.random_preset if args.random_preset else 'trained'}, "
                  f"{first.model.num_parameters() / 1e6:.2f} M parameters, {first.model.config.steps if args.steps is None else args.steps} "
                  f"Euler steps), device {args.device}, {torch.get_num_threads()} threads, torch {torch.__version__}; "
                  f"student: {student_note}")
        table = Table(title=f"avflow synth, end to end (median of {args.repeats} alternating runs)")
        for col in ("sentences", "speech (s)", "vocoder", "t2t (s)", "avflow (s)", "head VAE (s)", "vocoder (s)",
                    "total (s)", "RTF", "CPU s per speech s", "vocoder share"):
            table.add_column(col, justify="right")
        for n in args.sentences:
            text = " ".join((SENTENCES * (n // len(SENTENCES) + 1))[:n])
            runs: dict[str, list] = {k: [] for k in synths}
            for _ in range(args.repeats):
                for name, synth in synths.items():
                    start, cpu = time.perf_counter(), time.process_time()
                    result = synth.synthesize(text, steps=args.steps)
                    result.timings["cpu"] = time.process_time() - cpu
                    runs[name].append((time.perf_counter() - start, result))
            for name, items in runs.items():
                total = statistics.median(t for t, _ in items)
                res = min(items, key=lambda it: abs(it[0] - total))[1]
                t = res.timings
                table.add_row(str(n), f"{res.seconds:.2f}", name, f"{t['t2t']:.3f}", f"{t['avflow']:.3f}",
                              f"{t.get('head_vae', 0.0):.3f}", f"{t['vocoder']:.3f}", f"{total:.3f}",
                              f"{total / res.seconds:.3f}", f"{t['cpu'] / res.seconds:.3f}",
                              f"{100 * t['vocoder'] / total:.0f}%")
        con.print(table)


if __name__ == "__main__":
    main()
