"""Asterisk core sound prompts (one voice actor, read text) → the LJSpeech layout, force-aligned.

Published layout (Debian ``asterisk-core-sounds-en-g722|wav``): ``SOUNDS/NAME.g722`` (G.722,
16 kHz wideband) or ``SOUNDS/NAME.wav`` (8 kHz PCM), some NAMEs in sub-folders (``digits/7``),
and the texts in ``core-sounds-en.txt(.gz)``, one ``NAME: text`` a line (``;`` comments,
``[…]`` for what is not speech: "[ascending tones]", "at [@]").

The output is the folder ``avflow prep tokens`` and ``avflow train t2t`` read
(docs/INTERFACES.md §5): ``metadata.csv``, ``wavs/ID.wav`` at the model rate
(``constants.SAMPLE_RATE``, mono 16-bit), plus ``alignments/ID.json`` with the forced-aligned
phone and word timing (the same form the demo corpus writes from flite, so
``prep tokens --source alignment`` and ``avflow demo corpus --actor-speech`` read it) and
``import.json`` (what was kept, skipped and why, rates, bandwidth). A prompt is never trained on
silently when it is doubtful: empty text, text that does not match the audio, words the
aligner does not know → skipped with the reason.

Bandwidth: G.722 carries 50–7000 Hz, the 8 kHz wav fallback up to 4000 Hz, while the model's
mel spans ``MEL_FMIN``–``MEL_FMAX`` (0–8000 Hz) at 22 050 Hz. Resampling cannot add what the
recording lacks: the mel bands above the recorded band hold only the resampler's stop-band
(near the log floor). They are kept (the model's mel layout is fixed) and trained on as they
are: every target of this voice has them equally low, so AV-Flow's loss learns "quiet" there,
and the vocoder fine-tuned on these recordings learns to leave that band empty. ``import.json``
records the effective band and how many mel bins lie above it (``mel_band``).
"""

from __future__ import annotations

import gzip
import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from avflow_cli.constants import MEL_FMAX, N_MELS, SAMPLE_RATE, TOKEN_SAMPLE_RATE
from avflow_cli.errors import AvflowError, InputFileError
from avflow_cli.fsutil import atomic_path

TEXTS_NAME = "core-sounds-en.txt"
SOUNDS_SUBDIR = Path("usr/share/asterisk/sounds/en_US_f_Allison")
TEXTS_SUBDIR = Path("usr/share/doc/asterisk-core-sounds-en")
VOICE = "asterisk:en_US_f_Allison"
LICENSE = "CC-BY-SA-3.0"
ATTRIBUTION = ("Asterisk core sound prompts, voice of Allison Smith, © Digium, Inc. "
               "(asterisk-core-sounds-en 1.6.1), licensed CC-BY-SA-3.0")
MIN_CORPUS_SECONDS = 60.0  # below this a voice cannot be learnt: refuse
# Effective audio band (Hz) of each source format; G.722 is specified as 50–7000 Hz.
BAND_HZ = {"g722": (50.0, 7000.0), "wav": (0.0, 4000.0)}
IMPORT_FILE = "import.json"
HELDOUT_DIR = "heldout"


@dataclass(frozen=True)
class Prompt:
    name: str  # as in the text file, may hold "/" (digits/7)
    text: str

    @property
    def id(self) -> str:
        """A plain file name for the prompt (``digits/7`` → ``digits__7``)."""
        return self.name.replace("/", "__")


@dataclass
class AsteriskReport:
    """Prompts written, already there, skipped with a reason; source rates met."""

    written: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    heldout: list[str] = field(default_factory=list)
    rates: dict[int, int] = field(default_factory=dict)  # source sample rate → prompts
    seconds: float = 0.0

    def summary(self) -> str:
        rates = ", ".join(f"{n} at {r} Hz" for r, n in sorted(self.rates.items()))
        return (f"{len(self.written)} written, {len(self.existing)} already done, {len(self.skipped)} skipped, "
                f"{len(self.heldout)} held out; {self.seconds / 60:.1f} min of speech; resampled to "
                f"{SAMPLE_RATE} Hz from {rates or 'nothing'}")


def find_layout(src: Path) -> tuple[Path, Path]:
    """(sounds folder, texts file) of an unpacked package tree or of a plain folder holding both."""
    candidates = [(src / SOUNDS_SUBDIR, src / TEXTS_SUBDIR), (src, src)]
    for sounds, docs in candidates:
        for name in (TEXTS_NAME, TEXTS_NAME + ".gz"):
            if sounds.is_dir() and (docs / name).is_file():
                return sounds, docs / name
    raise InputFileError(src, f"not an Asterisk sounds folder (expected {TEXTS_NAME}[.gz] and the prompts, "
                              f"or {SOUNDS_SUBDIR} + {TEXTS_SUBDIR})")


def read_texts(path: Path) -> list[Prompt]:
    """Parse ``NAME: text`` lines (``;`` comments and blank lines skipped; empty text kept as "")."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8") as f:  # type: ignore[operator]
            lines = f.read().splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise InputFileError(path, f"unreadable texts ({err})") from err
    prompts, seen = [], set()
    for n, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith(";"):
            continue
        name, sep, text = line.partition(":")
        name = name.strip()
        if not sep or not name or " " in name or name.startswith((".", "/")) or ".." in name:
            raise InputFileError(path, f"line {n}: expected 'name: text', got {line[:60]!r}")
        if name in seen:
            raise InputFileError(path, f"line {n}: duplicate prompt {name!r}")
        seen.add(name)
        prompts.append(Prompt(name, " ".join(text.split())))
    if not prompts:
        raise InputFileError(path, "no prompts")
    return prompts


def read_list(path: Path) -> list[str]:
    """Prompt names, one a line (``#`` comments)."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as err:
        raise InputFileError(path, f"unreadable list ({err.strerror})") from err
    return [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]


def decode(path: Path) -> tuple[np.ndarray, int]:
    """Mono float samples and the native rate of a .g722 (ffmpeg) or .wav file."""
    if path.suffix == ".g722":
        proc = subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-f", "g722", "-i", str(path),
                               "-f", "s16le", "-ac", "1", "-"], capture_output=True, check=False)
        if proc.returncode != 0:
            raise InputFileError(path, f"ffmpeg cannot decode it ({proc.stderr.decode(errors='replace').strip()[:120]})")
        return np.frombuffer(proc.stdout, "<i2").astype(np.float32) / 32768.0, 16000
    from avflow_cli.audio.io import read_audio

    audio, sr = read_audio(path)
    return audio.mean(axis=0).astype(np.float32), int(sr)


def source_file(sounds: Path, prompt: Prompt) -> Path | None:
    """The prompt's G.722 file (wideband) or else its wav, None when neither exists."""
    for ext in ("g722", "wav"):
        p = sounds / f"{prompt.name}.{ext}"
        if p.is_file():
            return p
    return None


def mel_band(top_hz: float) -> dict[str, float | int]:
    """How much of the model's mel range a recording of band ``top_hz`` fills (bins by centre)."""
    from avflow_cli.audio.mel import mel_basis
    from avflow_cli.constants import N_FFT

    basis = mel_basis().numpy()  # (N_MELS, N_FFT // 2 + 1)
    centres = basis.argmax(axis=1) * SAMPLE_RATE / N_FFT  # (N_MELS,) Hz
    empty = int((centres > top_hz).sum())
    return {"top_hz": float(top_hz), "mel_fmax": MEL_FMAX, "n_mels": N_MELS, "bins_above": empty,
            "first_bin_above": N_MELS - empty}


def import_asterisk(
    src: str | Path,
    out: str | Path,
    *,
    hold_out: list[str] | None = None,
    limit: int | None = None,
    min_seconds: float = MIN_CORPUS_SECONDS,
    min_score_ratio: float | None = None,
) -> AsteriskReport:
    """Write the prompts of ``src`` to ``out`` (LJSpeech layout + alignments) and return the report.

    ``hold_out`` names go to ``out/heldout/`` (same layout), never into ``out/metadata.csv``.
    Raises when fewer than ``min_seconds`` of speech survive. ``min_score_ratio``: the text-matches-
    audio threshold (default ``forced_alignment.MIN_SCORE_RATIO``).
    """
    from avflow_cli.audio.forced_alignment import (
        ALIGNER_NAME,
        MIN_SCORE_RATIO,
        AlignmentError,
        check_transcript,
        spoken_text,
    )
    from avflow_cli.audio.io import resample, write_audio
    from avflow_cli.console import progress

    ratio = MIN_SCORE_RATIO if min_score_ratio is None else float(min_score_ratio)
    sounds, texts_path = find_layout(Path(src))
    out = Path(out)
    if out.resolve() == sounds.resolve():
        raise AvflowError(f"{out}: output must differ from the source folder")
    prompts = read_texts(texts_path)
    held = set(hold_out or [])
    unknown = held - {p.name for p in prompts}
    if unknown:
        raise AvflowError(f"--hold-out names prompts that are not in {texts_path.name}: {', '.join(sorted(unknown)[:5])}")
    if limit is not None:
        prompts = prompts[:limit]
    ids = [p.id for p in prompts]
    if len(set(ids)) != len(ids):
        raise AvflowError(f"{texts_path}: two prompt names map to one file name")
    report = AsteriskReport()
    rows: dict[str, list[tuple[str, str, str]]] = {"train": [], "heldout": []}
    for sub in (out, out / HELDOUT_DIR):
        (sub / "wavs").mkdir(parents=True, exist_ok=True)
        (sub / "alignments").mkdir(parents=True, exist_ok=True)
    with progress() as bar:
        task = bar.add_task("Asterisk prompts", total=len(prompts), status="")
        for prompt in prompts:
            bar.advance(task)
            part = "heldout" if prompt.name in held else "train"
            dst_dir = out / HELDOUT_DIR if part == "heldout" else out
            wav_out, ali_out = dst_dir / "wavs" / f"{prompt.id}.wav", dst_dir / "alignments" / f"{prompt.id}.json"
            if wav_out.is_file() and ali_out.is_file():
                meta = json.loads(ali_out.read_text())
                report.existing.append(prompt.name)
                report.rates[meta["source_rate"]] = report.rates.get(meta["source_rate"], 0) + 1
                report.seconds += meta["duration"]
                rows[part].append((prompt.id, prompt.text, meta["text"]))
                continue
            path = source_file(sounds, prompt)
            if path is None:
                report.skipped.append((prompt.name, "no .g722 or .wav file"))
                continue
            audio, sr = decode(path)
            if len(audio) < sr // 10:
                report.skipped.append((prompt.name, "audio shorter than 0.1 s"))
                continue
            x16 = resample(audio, sr, TOKEN_SAMPLE_RATE).numpy() if sr != TOKEN_SAMPLE_RATE else audio
            try:
                ali = check_transcript(x16, prompt.text, ratio)
            except AlignmentError as err:
                report.skipped.append((prompt.name, str(err)))
                continue
            wav = resample(audio, sr, SAMPLE_RATE).numpy()  # (N,) at the model rate
            lo, hi = BAND_HZ[path.suffix.lstrip(".")]
            hi = min(hi, sr / 2)
            spoken = spoken_text(prompt.text)
            write_audio(wav_out, wav, SAMPLE_RATE)
            with atomic_path(ali_out) as tmp:
                tmp.write_text(json.dumps({
                    "text": spoken, "written_text": prompt.text, "sample_rate": SAMPLE_RATE, "duration": round(len(wav) / SAMPLE_RATE, 4),
                    "voice": VOICE, "source": f"{prompt.name}{path.suffix}", "source_rate": sr,
                    "band_hz": [lo, hi], "aligner": ALIGNER_NAME, "score_ratio": ali.score_ratio, "aligned_words": [list(w) for w in ali.words],
                    "phones": [list(p) for p in ali.phones], "guessed_pronunciations": ali.guessed,
                }) + "\n")
            report.written.append(prompt.name)
            report.rates[sr] = report.rates.get(sr, 0) + 1
            report.seconds += len(wav) / SAMPLE_RATE
            rows[part].append((prompt.id, prompt.text, spoken))
    report.heldout = [r[0] for r in rows["heldout"]]
    train_s = sum(_duration(out / "alignments" / f"{r[0]}.json") for r in rows["train"])
    if train_s < min_seconds:
        raise AvflowError(f"{src}: only {train_s:.1f} s of usable training speech (at least {min_seconds:g} s needed); "
                          f"{len(report.skipped)} prompt(s) skipped")
    for part, folder in (("train", out), ("heldout", out / HELDOUT_DIR)):
        with atomic_path(folder / "metadata.csv") as tmp:
            tmp.write_text("".join(f"{i}|{t}|{n}\n" for i, t, n in rows[part]), encoding="utf-8")
    tops = {BAND_HZ["g722"][1] if r == 16000 else min(BAND_HZ["wav"][1], r / 2) for r in report.rates}
    with atomic_path(out / IMPORT_FILE) as tmp:
        tmp.write_text(json.dumps({
            "source": str(Path(src)), "voice": VOICE, "license": LICENSE, "attribution": ATTRIBUTION,
            "sample_rate": SAMPLE_RATE, "source_rates": {str(k): v for k, v in sorted(report.rates.items())},
            "mel_band": mel_band(min(tops)) if tops else None,
            "mel_band_note": ("mel bins above top_hz hold only resampler stop-band (near the log floor); kept and "
                              "trained on as they are: the model and the fine-tuned vocoder learn that band as quiet"),
            "aligner": ALIGNER_NAME, "min_score_ratio": ratio,
            "train": len(rows["train"]), "train_seconds": round(train_s, 2), "heldout": report.heldout,
            "guessed_pronunciations": _guessed(out, rows["train"] + rows["heldout"]),
            "skipped": [{"prompt": n, "reason": r} for n, r in report.skipped],
        }, indent=1) + "\n")
    return report


def _guessed(out: Path, rows: list[tuple[str, str, str]]) -> dict[str, str]:
    """Every word outside the dictionary that the imported prompts were aligned with (word → flite's phones)."""
    found: dict[str, str] = {}
    for prompt_id, _, _ in rows:
        for folder in (out, out / HELDOUT_DIR):
            path = folder / "alignments" / f"{prompt_id}.json"
            if path.is_file():
                found.update(json.loads(path.read_text()).get("guessed_pronunciations", {}))
    return dict(sorted(found.items()))


def _duration(path: Path) -> float:
    return float(json.loads(path.read_text())["duration"])
