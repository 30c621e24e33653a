"""What the live avatar says, per live setting: WER of its speech, and the say latency it allows.

    python benchmarks/live_speech.py [--sentences dev|test] [--settings 16,16,8,6 8,8,4,4 ...] [--no-write]

A ``LiveSession`` of the shipped model on a fake clock (so the numbers do not depend on the machine's
load) is told the probe sentences one after another, each when the one before has ended; the
avatar's streamed audio between each line's ``say_start`` and ``say_end`` (± 10 frames) is
transcribed by pocketsphinx and pooled into one WER. A setting is
``chunk,lookahead,steps,vocoder_context[,overlap]`` (overlap: past frames each chunk re-reads;
default the model's left receptive field). The settings were chosen on the development sentences;
the frozen test sentences are reported once for the default. CPU seconds per output second
are measured in the same run (process CPU of the session, before its output is transcribed;
1 torch thread; the machine's load inflates them, the ratios between settings hold).

Writes the table between the ``live_speech`` markers of docs/live.md (unless --no-write).
"""

from __future__ import annotations

import argparse
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from avflow_cli import constants as K  # noqa: E402
from avflow_cli.live import LiveSession  # noqa: E402
from avflow_cli.live.drive import FakeClock  # noqa: E402
from avflow_cli.live.session import LIVE_CHUNK, LIVE_LOOKAHEAD, LIVE_STEPS, LIVE_VOCODER_CONTEXT  # noqa: E402
from avflow_cli.metrics.probe import corpus_wer, probe_sentences  # noqa: E402
from avflow_cli.synth import Synthesizer  # noqa: E402

DOC = Path(__file__).resolve().parents[1] / "docs" / "live.md"
PIECE_S = 0.02  # the driver's step (a sound card's buffer)
PAD = 10  # frames of audio kept either side of a line
DEFAULT = (LIVE_CHUNK, LIVE_LOOKAHEAD, LIVE_STEPS, LIVE_VOCODER_CONTEXT)
OLD_DEFAULT = (16, 16, 8, 6)  # the first live defaults (chunk 186 ms, the model's 8 steps)


@dataclass
class SettingResult:
    setting: tuple[int, ...]
    wer: float
    cpu_per_output_s: float


def speak(synth: Synthesizer, sentences: list[str], setting: tuple[int, ...], seed: int = 0) -> SettingResult:
    """The avatar says each sentence in turn (module docstring); its WER and CPU cost."""
    chunk, lookahead, steps, vctx, *overlap = setting
    clock = FakeClock()
    s = LiveSession(synth, sample_rate=16000, clock=clock, chunk=chunk, lookahead=lookahead, steps=steps,
                    vocoder_context=vctx, seed=seed, overlap=overlap[0] if overlap else None)
    queue, outs, silence = list(sentences), [], np.zeros(int(PIECE_S * 16000), np.float32)
    cpu0 = time.process_time()
    while queue or s.busy:
        clock.t = round(clock.t + PIECE_S, 6)
        s.push_audio(silence)
        if queue and not s.busy:
            s.say(queue.pop(0))
        outs += s.step()
    clock.t += 0.5
    outs += s.close()
    cpu = time.process_time() - cpu0
    wav = np.zeros(s.samples_out, np.float32)
    spans: dict[str, list[int]] = {}
    for o in outs:
        wav[o.wav_start : o.wav_start + len(o.wav)] = o.wav
        for ev in o.events:
            if ev["type"] in ("say_start", "say_end"):
                spans.setdefault(ev["id"], []).append(ev["frame"])
    hop = s.hop
    wavs = [wav[max(0, a - PAD) * hop : (b + PAD) * hop] for a, b in (spans[f"say-{i + 1}"] for i in range(len(sentences)))]
    return SettingResult(setting, corpus_wer(sentences, wavs, K.SAMPLE_RATE), cpu / (s.samples_out / K.SAMPLE_RATE))


def table(results: list[SettingResult], sentences: str) -> str:
    rows = ["| chunk / look-ahead / Euler steps / vocoder context [/ overlap] (frames) | WER (pocketsphinx) | CPU s per output s |",
            "|---|---|---|"]
    for r in results:
        name = "/".join(str(v) for v in r.setting)
        tag = " (default)" if r.setting == DEFAULT else " (first defaults)" if r.setting == OLD_DEFAULT else ""
        rows.append(f"| {name}{tag} | {r.wer:.3f} | {r.cpu_per_output_s:.2f} |")
    return "\n".join(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sentences", choices=("dev", "test"), default="dev")
    ap.add_argument("--settings", nargs="*", default=None, help="chunk,lookahead,steps,vocoder_context[,overlap] (frames)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    settings = ([tuple(int(v) for v in s.split(",")) for s in args.settings] if args.settings else
                [OLD_DEFAULT, (8, 8, 8, 6), (8, 8, 4, 6), DEFAULT, (8, 8, 4, 2)])
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    synth = Synthesizer("pretrained", device="cpu")
    sentences = probe_sentences(args.sentences)
    results = []
    for setting in settings:
        results.append(speak(synth, sentences, setting, seed=args.seed))
        print(table(results[-1:], args.sentences).splitlines()[-1], flush=True)
    header = (f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, shipped model, the "
              f"{len(sentences)} {'development' if args.sentences == 'dev' else 'frozen test'} sentences, seed "
              f"{args.seed}. Command: `python benchmarks/live_speech.py --sentences {args.sentences}"
              f"{' --settings ' + ' '.join(','.join(map(str, s)) for s in settings) if args.settings else ''}`.")
    text = header + "\n\n" + table(results, args.sentences)
    print(text)
    marker = f"live_speech_{args.sentences}"
    if not args.no_write and DOC.is_file():
        doc = DOC.read_text()
        if f"<!-- {marker} -->" in doc:
            DOC.write_text(re.sub(rf"(<!-- {marker} -->\n).*?(\n<!-- /{marker} -->)", lambda m: m.group(1) + text + m.group(2),
                                  doc, flags=re.S))


if __name__ == "__main__":
    main()
