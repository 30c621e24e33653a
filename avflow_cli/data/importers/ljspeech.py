"""LJSpeech (keithito.com/LJ-Speech-Dataset) → the folder text-to-tokens trains on.

Published layout: ``LJSpeech-1.1/metadata.csv`` with one line per clip,
``ID|transcription|normalized transcription`` (``|``-separated, no header, no quoting; 13 100
lines) and ``wavs/ID.wav`` (mono, 22 050 Hz, 16-bit PCM). The output (docs/INTERFACES.md §5)
has the same shape: ``metadata.csv`` (``id|text|normalised text``) and ``wavs/ID.wav`` at
22 050 Hz mono; ``avflow prep tokens`` later adds ``tokens/ID.npy``. Other corpora in this
layout work too: wavs of another rate or channel count are down-mixed and resampled, a
missing normalised column falls back to the text. Each wav is written atomically and
skipped on re-runs; ``metadata.csv`` is written last.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import soundfile as sf

from avflow_cli.constants import SAMPLE_RATE
from avflow_cli.data.importers.session import ImportReport
from avflow_cli.errors import AvflowError, InputFileError
from avflow_cli.fsutil import atomic_path

METADATA = "metadata.csv"
WAVS = "wavs"


@dataclass(frozen=True)
class MetadataLine:
    """One line of the published ``metadata.csv`` (``data/t2t_dataset.Utterance`` is a training example)."""

    id: str
    text: str
    normalized: str


def find_root(src: Path) -> Path:
    """``src`` or its single sub-folder (``LJSpeech-1.1/``) that holds metadata.csv."""
    if (src / METADATA).is_file():
        return src
    subs = [p for p in src.iterdir() if (p / METADATA).is_file()] if src.is_dir() else []
    if len(subs) == 1:
        return subs[0]
    raise InputFileError(src / METADATA, "file not found (expected an LJSpeech-style folder with metadata.csv and wavs/)")


def read_metadata(path: Path) -> list[MetadataLine]:
    """Parse ``id|text|normalized text`` lines; one-line errors name the bad line."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as err:
        raise InputFileError(path, f"not UTF-8 text ({err.reason} at byte {err.start})") from err
    utts: list[MetadataLine] = []
    seen: set[str] = set()
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        fields = line.split("|")
        if len(fields) not in (2, 3) or not fields[0].strip() or not fields[1].strip():
            raise InputFileError(path, f"line {lineno}: expected 'id|text|normalized text', got {line[:60]!r}")
        uid = fields[0].strip()
        if "/" in uid or "\\" in uid or uid.startswith("."):
            raise InputFileError(path, f"line {lineno}: id {uid!r} is not a plain file name")
        if uid in seen:
            raise InputFileError(path, f"line {lineno}: duplicate id {uid!r}")
        seen.add(uid)
        text = fields[1].strip()
        norm = fields[2].strip() if len(fields) == 3 and fields[2].strip() else text
        utts.append(MetadataLine(uid, text, norm))
    if not utts:
        raise InputFileError(path, "no utterances")
    return utts


def _is_ready(info: Any) -> bool:
    """True for a 22 050 Hz mono 16-bit WAV (``sf.info`` result), which is copied unchanged."""
    return info.samplerate == SAMPLE_RATE and info.channels == 1 and info.subtype == "PCM_16" and info.format == "WAV"


def convert_wav(src: Path, dst: Path) -> None:
    """Copy a ready 22 050 Hz mono PCM-16 wav; otherwise down-mix, resample and write it."""
    from avflow_cli.audio.io import read_audio, resample, write_audio

    try:
        info = sf.info(str(src))
    except (sf.LibsndfileError, RuntimeError) as err:
        raise InputFileError(src, f"not a readable audio file ({err})") from err
    if _is_ready(info) and info.frames > 0:
        with atomic_path(dst) as tmp:
            shutil.copyfile(src, tmp)
        return
    audio, sr = read_audio(src)  # (C, N)
    mono = audio.mean(axis=0)  # (N,)
    write_audio(dst, resample(mono, sr, SAMPLE_RATE).numpy(), SAMPLE_RATE)


def import_ljspeech(src: str | Path, out: str | Path, *, limit: int | None = None) -> ImportReport:
    """Validate an LJSpeech-style corpus and write it to ``out`` at 22 050 Hz mono."""
    from avflow_cli.console import progress

    root = find_root(Path(src))
    out = Path(out)
    if out.resolve() == root.resolve():
        raise AvflowError(f"{out}: output must differ from the source folder")
    utts = read_metadata(root / METADATA)
    if limit is not None:
        if limit < 1:
            raise AvflowError(f"--limit must be ≥ 1, got {limit}")
        utts = utts[:limit]
    missing = [u.id for u in utts if not (root / WAVS / f"{u.id}.wav").is_file()]
    if missing:
        raise InputFileError(root / WAVS / f"{missing[0]}.wav", f"file not found ({len(missing)} of {len(utts)} listed wavs are missing)")
    report = ImportReport()
    (out / WAVS).mkdir(parents=True, exist_ok=True)
    with progress() as bar:
        task = bar.add_task("LJSpeech", total=len(utts), status="")
        for u in utts:
            dst = out / WAVS / f"{u.id}.wav"
            if dst.is_file():
                report.existing.append(u.id)
            else:
                convert_wav(root / WAVS / f"{u.id}.wav", dst)
                report.written.append(u.id)
            bar.advance(task)
    with atomic_path(out / METADATA) as tmp:
        tmp.write_text("".join(f"{u.id}|{u.text}|{u.normalized}\n" for u in utts), encoding="utf-8")
    return report


def total_seconds(folder: str | Path) -> float:
    """Total audio duration of ``folder/wavs`` (for reports)."""
    return float(sum(sf.info(str(p)).duration for p in sorted((Path(folder) / WAVS).glob("*.wav"))))

