"""Seconds of audio processed per second of compute, for every `avflow prep` stage.

    python benchmarks/prep_speed.py [--src CORPUS] [--minutes 1] [--repeats 1]

Without ``--src`` it generates the built-in demo corpus (``--minutes`` of it) in a temporary
folder first (not timed). Each stage runs on every session with ``force`` so nothing is
skipped; the table shows audio seconds / wall seconds (higher is faster; 1.0 = real time).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "2")

import soundfile as sf  # noqa: E402
import torch  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402


def _time(fn: Callable[[], object], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def benchmark(src: Path, work: Path, repeats: int) -> list[tuple[str, float, float]]:
    """(stage, audio seconds, wall seconds) per stage over all sessions of ``src``."""
    from avflow_cli.data import prep

    sessions = prep.find_sessions(src)
    audio_s = sum(sf.info(str(s.audio_path)).duration for s in sessions)
    opts = prep.ShardOptions(tokens_source="alignment", val_fraction=0.0, test_fraction=0.0)
    stages: list[tuple[str, Callable[[], object]]] = [
        ("vad", lambda: [prep.stage_vad(s, work, force=True) for s in sessions]),
        ("mel", lambda: [prep.stage_mel(s, work, force=True) for s in sessions]),
        ("tokens (alignment)", lambda: [prep.stage_tokens(s, work, source="alignment", force=True) for s in sessions]),
        ("headpose", lambda: [prep.stage_headpose(s, work, force=True) for s in sessions]),
        ("shards", lambda: _shards(prep, src, work, opts)),
    ]
    return [(name, audio_s, _time(fn, repeats)) for name, fn in stages]


def _shards(prep, src: Path, work: Path, opts) -> None:
    import shutil

    shutil.rmtree(work / prep.SHARDS_DIR, ignore_errors=True)
    prep.build_shards(src, work, opts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--src", type=Path, help="session tree to time (default: generate the demo corpus)")
    parser.add_argument("--minutes", type=float, default=1.0, help="demo corpus minutes when --src is not given")
    parser.add_argument("--repeats", type=int, default=1, help="best of this many runs per stage")
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    console = Console()
    with tempfile.TemporaryDirectory() as tmp:
        src = args.src
        if src is None:
            from avflow_cli.data.demo_corpus import generate_corpus

            src = Path(tmp) / "corpus"
            console.print(f"generating {args.minutes} min of demo corpus (not timed) …")
            generate_corpus(src, minutes=args.minutes, seed=0, show_progress=False)
        rows = benchmark(src, Path(tmp) / "work", args.repeats)
    table = Table("stage", "audio (s)", "wall (s)", "audio s / s", title=f"avflow prep speed ({os.environ['OMP_NUM_THREADS']} threads, CPU)")
    for name, audio_s, wall in rows:
        table.add_row(name, f"{audio_s:.1f}", f"{wall:.2f}", f"{audio_s / wall:.1f}")
    console.print(table)


if __name__ == "__main__":
    main()
