"""Vocoder training (``avflow train vocoder``): distil the shipped HiFi-GAN into the light iSTFT student.

Data: pairs (mel, teacher waveform). By default flite speaks Harvard sentences in three voices
(slt, rms, awb), each sentence by one voice; the 22 050 Hz log-mel of that speech goes through the
teacher, whose output is the target, so the student learns to sound like the teacher on the
mels avflow produces. A folder of ``.wav`` files (any rate) or ``.npy`` mels (T, 80) works too.
The last :data:`HELD_OUT` Harvard sentences never enter training: they are the WER test set.

``targets="speech"`` trains on the speech itself instead of the teacher's imitation of it (flite's
own waveform, or the ``.wav`` files' audio). Ground-truth-aligned (GTA) pairs, as HiFi-GAN's
authors fine-tune on their TTS model's mels: an AV-Flow model generates mels from the alignment
tokens of flite speech in its actor's voice, and that speech is the target, so the vocoder learns
to turn the model's mels (their noise floor, their blur) into clean speech. With ``gta_tokens``
the GTA pairs come from a user's own recordings instead: each utterance's alignment tokens (as
``avflow prep tokens --source alignment`` writes them for a voice folder) go through the model,
and the recording of the same name in ``data`` is the target, so a model trained on a real voice
gets a vocoder for its own mels of that voice. ``init`` starts from a trained student
(fine-tuning) instead of random weights.

Loss (student y vs teacher t, both waveforms): multi-resolution STFT (spectral convergence +
log-magnitude L1 at 512/1024/2048), log-mel L1 (avflow's mel recipe), and a compressed complex
STFT loss (|S|^0.3 with phase) that the paired, time-aligned teacher output makes possible, so
phase is learnt directly rather than through an adversary.

Long runs are resumable: ``checkpoint.pt`` (weights, optimiser, step, RNG) is written atomically
every ``save_every`` steps and at the end of a call; ``--resume`` with the same ``--out``
continues the same loss curve (the (mel, teacher audio) pairs in ``out/data`` are reused).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from avflow_cli.audio.student_vocoder import QUALITY_FILE, StudentConfig, StudentGenerator, load_student, save_student
from avflow_cli.constants import HOP_LENGTH, N_MELS, SAMPLE_RATE
from avflow_cli.errors import AvflowError
from avflow_cli.npzfile import read_npy

HELD_OUT = 30  # last three Harvard lists: the unseen test sentences
VOICES = ("slt", "rms", "awb")
TARGETS = ("teacher", "speech")
GTA_TEMPERATURES = (0.5, 1.0)  # each GTA sentence twice: a clear and a plain-flow sample of the model
RESOLUTIONS = ((512, 128), (1024, 256), (2048, 512))  # (n_fft, hop) of the multi-resolution STFT loss
COMPRESS = 0.3  # magnitude exponent of the complex loss
CHECKPOINT = "checkpoint.pt"
STUDENT_DIR = "student"
DATA_DIR = "data"
LOG_FILE = "train_log.tsv"
WER_MARGIN = 0.05  # the student ships when its WER is within this of the teacher's


def split_harvard_sentences() -> tuple[list[str], list[str]]:
    """(training sentences, held-out sentences) of the shipped Harvard list."""
    from avflow_cli.data.demo_corpus import load_sentences

    sentences = load_sentences()
    return sentences[:-HELD_OUT], sentences[-HELD_OUT:]


def speech_mel(text: str, voice: str, flite) -> torch.Tensor:
    """flite speech of ``text`` at 22 050 Hz → log-mel (T, 80)."""
    return speech_and_mel(text, voice, flite)[0]


def speech_and_mel(text: str, voice: str, flite) -> tuple[torch.Tensor, torch.Tensor]:
    """flite speech of ``text``: its log-mel (T, 80) and the 22 050 Hz waveform (S,)."""
    from avflow_cli.audio.io import resample
    from avflow_cli.audio.mel import log_mel
    from avflow_cli.data.demo_corpus import TRACK_RATE

    audio = resample(flite.synth(text, voice).audio, TRACK_RATE, SAMPLE_RATE)  # (S,)
    return log_mel(audio), audio


def aligned_target(speech: torch.Tensor, frames: int) -> torch.Tensor:
    """The ``frames``·hop samples of ``speech`` that ``frames`` mel frames vocode to (zero-padded)."""
    n = frames * HOP_LENGTH
    return F.pad(speech[:n], (0, max(0, n - speech.shape[0])))


# ----------------------------------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------------------------------
def recording_at_model_rate(path: Path) -> torch.Tensor:
    """A recording (any rate, channels averaged) at SAMPLE_RATE, mono (S,)."""
    from avflow_cli.audio.io import read_audio, resample

    audio, sr = read_audio(path)
    return resample(audio.mean(0), sr, SAMPLE_RATE)


def _save_pair(path: Path, mel: torch.Tensor, wav: torch.Tensor) -> None:
    from avflow_cli.fsutil import atomic_path

    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, mel=mel.numpy().astype(np.float32), wav=wav.numpy().astype(np.float32))


def build_pairs(
    out: Path, teacher, data: str | Path | None, sentences_per_voice: int, log: Callable[[str], None],
    targets: str = "teacher",
) -> list[Path]:
    """Write (mel, target wav) pairs under ``out/data`` (skipping those already there); their paths.

    ``targets``: "teacher" (the teacher vocodes the mel) or "speech" (the speech the mel came from).
    """
    from avflow_cli.audio.mel import log_mel

    if targets not in TARGETS:
        raise AvflowError(f"--targets must be one of {', '.join(TARGETS)}, got {targets!r}")
    folder = out / DATA_DIR
    folder.mkdir(parents=True, exist_ok=True)
    Make = Callable[[], tuple[torch.Tensor, "torch.Tensor | None"]]  # → mel (T, 80), speech (S,) or None
    jobs: list[tuple[Path, Make]] = []
    if data is None:
        from avflow_cli.data.demo_corpus import Flite

        flite = Flite()
        train, _ = split_harvard_sentences()
        for v, voice in enumerate(VOICES):
            picked = [s for i, s in enumerate(train) if i % len(VOICES) == v][:sentences_per_voice]
            for i, text in enumerate(picked):
                jobs.append((folder / f"{voice}_{i:04d}.npz", lambda text=text, voice=voice: speech_and_mel(text, voice, flite)))
    else:
        src = Path(data)
        if not src.is_dir():
            raise AvflowError(f"--data {src}: not a folder of .wav or .npy files")
        files = sorted(p for p in src.rglob("*") if p.suffix.lower() in (".wav", ".npy"))
        if not files:
            raise AvflowError(f"--data {src}: no .wav or .npy files found")
        if targets == "speech" and any(p.suffix.lower() == ".npy" for p in files):
            raise AvflowError(f"--data {src}: --targets speech needs .wav files (a .npy mel has no speech to learn from)")

        def load(p: Path) -> tuple[torch.Tensor, torch.Tensor | None]:
            if p.suffix.lower() == ".npy":
                mel = torch.as_tensor(read_npy(p), dtype=torch.float32)  # no pickles; damaged: one line
                if mel.ndim != 2 or mel.shape[1] != N_MELS:
                    raise AvflowError(f"{p}: expected a log-mel array (T, {N_MELS}), got {tuple(mel.shape)}")
                return mel, None
            speech = recording_at_model_rate(p)  # (S,)
            return log_mel(speech), speech

        for i, p in enumerate(files):
            jobs.append((folder / f"file_{i:05d}.npz", lambda p=p: load(p)))
    done = 0
    for path, make in jobs:
        if not path.is_file():
            mel, speech = make()  # (T, 80), (S,)
            wav = aligned_target(speech, mel.shape[0]) if targets == "speech" else teacher(mel)[0]  # (T·hop,)
            _save_pair(path, mel, wav)
            done += 1
            if done % 25 == 0:
                log(f"data: {done} new pairs written ({path.name})")
    log(f"data: {len(jobs)} pairs ({done} new, {targets} targets) in {folder}")
    return [p for p, _ in jobs]


def load_gta_model(model_dir: str | Path) -> torch.nn.Module:
    """The AV-Flow model GTA pairs come from; one line when it is missing or reads other tokens
    than the alignment tokens GTA pairs are made of."""
    from avflow_cli.audio.alignment_tokens import ALIGNMENT_EXTRACTOR
    from avflow_cli.data.token_source import compatible, describe
    from avflow_cli.models.registry import load_model

    if not (Path(model_dir) / "config.json").is_file():
        raise AvflowError(f"--gta-model {model_dir}: no AV-Flow model here (config.json missing)")
    model = load_model(model_dir, device="cpu")
    ours = describe("alignment", ALIGNMENT_EXTRACTOR)
    if not compatible(ours, model.config.token_source):
        raise AvflowError(f"--gta-model {model_dir}: trained on {model.config.token_source!r} tokens; GTA pairs are "
                          f"made from {ours!r} tokens (of flite speech, or of --gta-tokens)")
    return model


def build_gta_pairs(out: Path, model: torch.nn.Module, sentences: int, log: Callable[[str], None],
                    temperatures: tuple[float, ...] = GTA_TEMPERATURES) -> list[Path]:
    """Write ground-truth-aligned pairs under ``out/data``: ``model``'s mel (see
    :func:`load_gta_model`) generated from the alignment tokens of flite speech (the actor's voice)
    of the first ``sentences`` training sentences, one per temperature, each paired with that
    speech. Skips pairs already written."""
    from avflow_cli.metrics.probe import make_probe_items
    from avflow_cli.models.inference import generate

    folder = out / DATA_DIR
    folder.mkdir(parents=True, exist_ok=True)
    train, _ = split_harvard_sentences()
    picked = train[:sentences]
    paths = [[folder / f"gta_{i:04d}_{k}.npz" for k in range(len(temperatures))] for i in range(len(picked))]
    todo = [i for i, row in enumerate(paths) if not all(p.is_file() for p in row)]
    items = make_probe_items([picked[i] for i in todo]) if todo else []  # flite speech + its tokens
    for n, (i, item) in enumerate(zip(todo, items), 1):
        for k, temperature in enumerate(temperatures):
            mel = generate(model, item.tokens, seed=i + 1000 * k, temperature=temperature)["mel"][0]  # (T, 80)
            speech = torch.from_numpy(item.audio)
            _save_pair(paths[i][k], torch.from_numpy(mel), aligned_target(speech, mel.shape[0]))
        if n % 25 == 0:
            log(f"data: {n}/{len(todo)} GTA sentences generated")
    log(f"data: {len(picked) * len(temperatures)} GTA pairs ({len(todo) * len(temperatures)} new)")
    return [p for row in paths for p in row]


def recording_gta_stems(tokens_dir: Path, wav_dir: Path) -> tuple[list[str], int]:
    """(names with both an alignment-token ``.npy`` and a ``.wav``, sorted; count of token files
    without a recording); AvflowError when no name has both (checked before anything is written)."""
    if not tokens_dir.is_dir():
        raise AvflowError(f"--gta-tokens {tokens_dir}: not a folder of alignment-token .npy files")
    stems = sorted(p.stem for p in tokens_dir.glob("*.npy"))
    paired = [s for s in stems if (wav_dir / f"{s}.wav").is_file()]
    if not paired:
        raise AvflowError(f"--gta-tokens {tokens_dir}: no token file has a recording of the same name in --data {wav_dir}")
    return paired, len(stems) - len(paired)


def build_recording_gta_pairs(out: Path, model: torch.nn.Module, tokens_dir: str | Path, wav_dir: str | Path,
                              limit: int, log: Callable[[str], None],
                              temperatures: tuple[float, ...] = GTA_TEMPERATURES) -> list[Path]:
    """Ground-truth-aligned pairs of a user's recordings under ``out/data``: for each ``.npy`` of
    alignment tokens (TOKEN_RATE) in ``tokens_dir`` with a ``.wav`` of the same name in ``wav_dir``
    (the first ``limit`` by name; 0: all), ``model``'s mel generated from those tokens, one per
    temperature, paired with the recording. Skips pairs already written; tokens without a
    recording are counted and left out."""
    from avflow_cli.audio.mel import log_mel
    from avflow_cli.constants import TOKEN_DIM, TOKEN_RATE
    from avflow_cli.data.resample import resample_to_fps
    from avflow_cli.models.inference import generate

    tokens_dir, wav_dir = Path(tokens_dir), Path(wav_dir)
    paired, unpaired = recording_gta_stems(tokens_dir, wav_dir)
    if unpaired:
        log(f"data: {unpaired} token files have no recording in {wav_dir}: left out")
    picked = paired[:limit] if limit else paired
    folder = out / DATA_DIR
    folder.mkdir(parents=True, exist_ok=True)
    paths = [[folder / f"gta_rec_{s}_{k}.npz" for k in range(len(temperatures))] for s in picked]
    written = 0
    for i, (stem, row) in enumerate(zip(picked, paths)):
        if all(p.is_file() for p in row):
            continue
        tokens50 = read_npy(tokens_dir / f"{stem}.npy")
        if tokens50.ndim != 2 or tokens50.shape[1] != TOKEN_DIM:
            raise AvflowError(f"{tokens_dir / stem}.npy: expected alignment tokens (N, {TOKEN_DIM}), got {tokens50.shape}")
        speech = recording_at_model_rate(wav_dir / f"{stem}.wav")  # (S,)
        frames = log_mel(speech).shape[0]  # the recording's own mel length: the pair stays aligned
        tokens = resample_to_fps(tokens50, TOKEN_RATE, frames).astype(np.float32)  # (T, 29)
        for k, temperature in enumerate(temperatures):
            mel = generate(model, tokens, seed=i + 1000 * k, temperature=temperature)["mel"][0]  # (T, 80)
            _save_pair(row[k], torch.from_numpy(mel), aligned_target(speech, mel.shape[0]))
        written += 1
        if written % 25 == 0:
            log(f"data: {written} recordings' GTA mels generated")
    log(f"data: {len(picked) * len(temperatures)} GTA pairs of recordings ({written * len(temperatures)} new)")
    return [p for row in paths for p in row]


class PairSet:
    """All pairs in memory; random fixed-length segments, utterances weighted by length."""

    def __init__(self, paths: list[Path]) -> None:
        self.mels, self.wavs = [], []
        for p in paths:
            with np.load(p) as z:
                if z["mel"].shape[0] >= 8:
                    self.mels.append(torch.from_numpy(z["mel"]))
                    self.wavs.append(torch.from_numpy(z["wav"]))
        if not self.mels:
            raise AvflowError("no training pairs of at least 8 mel frames")
        lengths = np.array([m.shape[0] for m in self.mels], dtype=np.float64)
        self.weights = lengths / lengths.sum()
        self.frames = int(lengths.sum())

    def batch(self, size: int, seg: int, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """mel (B, 80, seg), wav (B, seg·hop); short utterances are zero-padded (silence mel)."""
        mels, wavs = [], []
        for i in rng.choice(len(self.mels), size=size, p=self.weights):
            mel, wav = self.mels[i], self.wavs[i]
            t = mel.shape[0]
            s = int(rng.integers(0, max(1, t - seg + 1)))
            m = mel[s : s + seg]
            w = wav[s * HOP_LENGTH : (s + seg) * HOP_LENGTH]
            if m.shape[0] < seg:
                m = torch.cat([m, torch.full((seg - m.shape[0], N_MELS), math.log(1e-5))])
                w = F.pad(w, (0, seg * HOP_LENGTH - w.shape[0]))
            mels.append(m.T)
            wavs.append(w)
        return torch.stack(mels), torch.stack(wavs)


# ----------------------------------------------------------------------------------------------
# Loss
# ----------------------------------------------------------------------------------------------
def _stft(x: torch.Tensor, n_fft: int, hop: int) -> torch.Tensor:
    window = torch.hann_window(n_fft, device=x.device)
    return torch.stft(x, n_fft, hop, n_fft, window, center=True, return_complex=True)  # (B, F, frames)


def distill_loss(y: torch.Tensor, t: torch.Tensor) -> dict[str, torch.Tensor]:
    """Student y and teacher t (B, N) → the loss terms and their sum under ``total``."""
    from avflow_cli.audio.mel import log_mel

    sc = mag = 0.0
    for n_fft, hop in RESOLUTIONS:
        Y, T = _stft(y, n_fft, hop), _stft(t, n_fft, hop)
        ya, ta = Y.abs().clamp_min(1e-5), T.abs().clamp_min(1e-5)
        sc = sc + torch.linalg.norm(ta - ya) / torch.linalg.norm(ta).clamp_min(1e-5)
        mag = mag + F.l1_loss(ya.log(), ta.log())
    sc, mag = sc / len(RESOLUTIONS), mag / len(RESOLUTIONS)
    mel = F.l1_loss(log_mel(y), log_mel(t))
    Y, T = _stft(y, 1024, 256), _stft(t, 1024, 256)
    cy = Y * Y.abs().clamp_min(1e-5).pow(COMPRESS - 1)
    ct = T * T.abs().clamp_min(1e-5).pow(COMPRESS - 1)
    cplx = (cy - ct).abs().square().mean()
    return {"total": sc + mag + mel + cplx, "sc": sc, "mag": mag, "mel": mel, "cplx": cplx}


# ----------------------------------------------------------------------------------------------
# Training
# ----------------------------------------------------------------------------------------------
@dataclass
class DistillSettings:
    steps: int = 6000
    batch: int = 16
    segment: int = 32  # mel frames per training segment (≈ 0.37 s)
    lr: float = 1e-3
    lr_final: float = 5e-5
    save_every: int = 200
    log_every: int = 25
    seed: int = 0
    sentences_per_voice: int = 100


def _lr(step: int, s: DistillSettings) -> float:
    warm = 200
    if step < warm:
        return s.lr * (step + 1) / warm
    frac = min(1.0, (step - warm) / max(1, s.steps - warm))
    return s.lr_final + 0.5 * (s.lr - s.lr_final) * (1 + math.cos(math.pi * frac))


def _save_checkpoint(path: Path, model, opt, step: int, rng: np.random.Generator, spent: float, cfg: StudentConfig) -> None:
    from avflow_cli.fsutil import atomic_path

    state = {"model": model.state_dict(), "opt": opt.state_dict(), "step": step, "rng": rng.bit_generator.state,
             "torch_rng": torch.get_rng_state(), "seconds": spent, "config": asdict(cfg)}
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def train_student(
    out: str | Path,
    *,
    teacher: str = "hifigan",
    teacher_checkpoint: str | Path | None = None,
    data: str | Path | None = None,
    settings: DistillSettings = DistillSettings(),
    config: StudentConfig = StudentConfig(),
    init: str | Path | None = None,
    targets: str = "teacher",
    gta_model: str | Path | None = None,
    gta_sentences: int = 0,
    gta_tokens: str | Path | None = None,
    max_minutes: float | None = None,
    resume: bool = False,
    log: Callable[[str], None] = print,
    on_step: Callable[[int, int, str], None] | None = None,
    stop_after: int | None = None,
) -> dict:
    """Build the pairs, train (``resume``: from ``out/checkpoint.pt``), write ``out/student``; a summary.

    ``init``: a student folder to fine-tune (its architecture replaces ``config``); ``targets``,
    ``gta_model`` / ``gta_sentences`` / ``gta_tokens``: see the module docstring (with
    ``gta_tokens``, ``gta_sentences`` limits the recordings; 0: all of them).

    ``on_step(step, total, status)`` is called after every step (progress bars); ``stop_after``
    ends this call after that many steps (checkpointed), as an interruption would.
    """
    from avflow_cli.audio.vocoder import load_vocoder

    out = Path(out)
    if teacher not in ("hifigan", "bigvgan"):
        raise AvflowError(f"--teacher must be hifigan or bigvgan, got {teacher!r}")
    ckpt = out / CHECKPOINT
    if resume and not ckpt.is_file():
        raise AvflowError(f"{out}: nothing to resume (no {CHECKPOINT} there); drop --resume to start a new run")
    if not resume and ckpt.is_file():
        raise AvflowError(f"{out}: holds a vocoder run already; pass --resume to continue it or choose another --out")
    if out.exists() and not out.is_dir():
        raise AvflowError(f"{out}: exists and is not a directory")
    if targets not in TARGETS:
        raise AvflowError(f"--targets must be one of {', '.join(TARGETS)}, got {targets!r}")
    if gta_model is None and (gta_sentences or gta_tokens is not None):
        raise AvflowError(f"{'--gta-tokens' if gta_tokens is not None else '--gta-sentences'} needs --gta-model")
    if gta_sentences < 0:
        raise AvflowError(f"--gta-sentences must be ≥ 0, got {gta_sentences}")
    if gta_model is not None and gta_tokens is None and gta_sentences < 1:
        raise AvflowError("--gta-model needs --gta-sentences N (N ≥ 1) or --gta-tokens DIR (a voice's alignment tokens)")
    if gta_tokens is not None:
        if data is None or targets != "speech":
            raise AvflowError("--gta-tokens needs --data (the recordings of those tokens) and --targets speech")
        recording_gta_stems(Path(gta_tokens), Path(data))
    # a bad --init or --gta-model fails before any data is made
    start = load_student(init) if init is not None else None
    gta = load_gta_model(gta_model) if gta_model is not None else None
    if start is not None:
        config = start.cfg
    out.mkdir(parents=True, exist_ok=True)
    teacher_voc = load_vocoder(teacher, teacher_checkpoint) if targets == "teacher" else None
    paths = build_pairs(out, teacher_voc, data, settings.sentences_per_voice, log, targets=targets)
    if gta is not None:
        log(f"GTA pairs from {gta_model}")
        if gta_tokens is not None:
            paths += build_recording_gta_pairs(out, gta, gta_tokens, data, gta_sentences, log)
        else:
            paths += build_gta_pairs(out, gta, gta_sentences, log)
    pairs = PairSet(paths)
    log(f"training on {len(pairs.mels)} pairs, {pairs.frames * HOP_LENGTH / SAMPLE_RATE:.0f} s of target audio ({targets}{' + GTA' if gta_model is not None else ''})")

    torch.manual_seed(settings.seed)
    model = StudentGenerator(config)
    if start is not None:
        model.load_state_dict(start.state_dict())
    opt = torch.optim.AdamW(model.parameters(), lr=settings.lr, betas=(0.8, 0.99), weight_decay=0.01)
    rng = np.random.default_rng(settings.seed)
    step, spent = 0, 0.0
    if resume:
        from avflow_cli.torchfile import load_torch_file

        state = load_torch_file(ckpt, "vocoder training state")  # plain data only: never runs code
        if state["config"] != asdict(config):
            raise AvflowError(f"{ckpt}: checkpoint is of another student architecture; use another --out")
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        rng.bit_generator.state = state["rng"]
        torch.set_rng_state(state["torch_rng"])
        step, spent = int(state["step"]), float(state["seconds"])
        log(f"resumed at step {step} ({spent / 60:.1f} min trained)")
    model.train()
    logf = open(out / LOG_FILE, "a")
    started = time.perf_counter()
    acc: dict[str, float] = {}
    end = settings.steps if stop_after is None else min(settings.steps, step + stop_after)
    while step < end:
        if max_minutes is not None and time.perf_counter() - started > 60 * max_minutes:
            log(f"stopping at step {step}: --max-minutes {max_minutes:g} reached (run again to continue)")
            break
        for g in opt.param_groups:
            g["lr"] = _lr(step, settings)
        mel, wav = pairs.batch(settings.batch, settings.segment, rng)
        terms = distill_loss(model(mel)[:, 0], wav)
        opt.zero_grad(set_to_none=True)
        terms["total"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        for k, v in terms.items():
            acc[k] = acc.get(k, 0.0) + float(v.detach())
        if on_step is not None:
            on_step(step, settings.steps, f"loss {float(terms['total'].detach()):.3f}")
        if step % settings.log_every == 0:
            now = spent + time.perf_counter() - started
            line = "\t".join([str(step), f"{now:.0f}"] + [f"{k}={v / settings.log_every:.4f}" for k, v in acc.items()])
            logf.write(line + "\n")
            logf.flush()
            if on_step is None:
                log(line)
            acc = {}
        if step % settings.save_every == 0 or step == settings.steps:
            _save_checkpoint(ckpt, model, opt, step, rng, spent + time.perf_counter() - started, config)
    logf.close()
    spent += time.perf_counter() - started
    if step % settings.save_every:
        _save_checkpoint(ckpt, model, opt, step, rng, spent, config)
    model.eval()
    meta = {"step": step, "teacher": teacher_voc.name if teacher_voc is not None else "none", "targets": targets,
            "init": str(init) if init is not None else "random", "gta_model": str(gta_model or "none"),
            "gta_sentences": gta_sentences, "gta_tokens": str(gta_tokens or "none")}
    save_student(model, out / STUDENT_DIR, meta=meta)
    return {"step": step, "steps": settings.steps, "minutes": spent / 60, "pairs": len(pairs.mels),
            "student": str(out / STUDENT_DIR), "finished": step >= settings.steps}


# ----------------------------------------------------------------------------------------------
# Evaluation
# ----------------------------------------------------------------------------------------------
def evaluate_student(
    student_dir: str | Path,
    *,
    teacher: str = "hifigan",
    teacher_checkpoint: str | Path | None = None,
    voices: tuple[str, ...] = VOICES,
    limit: int | None = None,
    log: Callable[[str], None] = print,
) -> dict:
    """WER of teacher and student on the held-out sentences (pocketsphinx), and their mel distance.

    Both vocode the mel of the same flite speech; WER is the corpus WER over the sentences.
    ``passed`` is True when the student's WER is at most the teacher's + :data:`WER_MARGIN`.
    """
    from avflow_cli.audio.mel import log_mel
    from avflow_cli.audio.vocoder import NeuralVocoder, load_vocoder
    from avflow_cli.audio.student_vocoder import load_student
    from avflow_cli.data.demo_corpus import Flite
    from avflow_cli.metrics.wer import WordErrors, transcribe_segments, word_errors

    teacher_voc = load_vocoder(teacher, teacher_checkpoint)
    student = NeuralVocoder(load_student(student_dir), "student")
    _, held = split_harvard_sentences()
    held = held[:limit] if limit else held
    flite = Flite()
    errs = {"teacher": WordErrors(), "student": WordErrors()}
    mel_l1, secs = [], {"teacher": 0.0, "student": 0.0}
    audio_s = 0.0
    backend = ""
    for voice in voices:
        for text in held:
            mel = speech_mel(text, voice, flite)  # (T, 80)
            audio_s += mel.shape[0] * HOP_LENGTH / SAMPLE_RATE
            outs = {}
            for name, voc in (("teacher", teacher_voc), ("student", student)):
                t0 = time.perf_counter()
                outs[name] = voc(mel)[0]
                secs[name] += time.perf_counter() - t0
                words, backend = transcribe_segments(outs[name].numpy(), SAMPLE_RATE)
                errs[name] = errs[name] + word_errors(text, words)
            mel_l1.append(float(F.l1_loss(log_mel(outs["student"]), log_mel(outs["teacher"]))))
    flite.close()
    result = {
        "sentences": len(held), "voices": list(voices), "asr": backend,
        "wer_teacher": errs["teacher"].wer, "wer_student": errs["student"].wer,
        "mel_l1_student_vs_teacher": float(np.mean(mel_l1)),
        "rtf_teacher": secs["teacher"] / audio_s, "rtf_student": secs["student"] / audio_s,
        "threads": torch.get_num_threads(), "margin": WER_MARGIN,
    }
    result["passed"] = bool(result["wer_student"] <= result["wer_teacher"] + WER_MARGIN)
    (Path(student_dir) / QUALITY_FILE).write_text(json.dumps(result, indent=2) + "\n")
    log(json.dumps(result))
    return result
