"""Real recorded sentences as the demo corpus's actor speech, with their forced-aligned phones.

The demo corpus drives the avatar's face from phone timing. flite gives that timing exactly for
its own speech; for a real voice it comes from forced alignment (``avflow prep import asterisk``
writes ``alignments/ID.json`` with pocketsphinx phones beside ``wavs/ID.wav``). This module reads
such an LJSpeech-layout folder into the same :class:`~avflow_cli.audio.flite.SpokenUtterance` flite
produces (audio at ``TRACK_RATE``, trimmed to the speech with a short margin, non-pause phones
from the trimmed start), so the conversation planner, face and head generators take real speech
unchanged and the lips follow the real voice.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from avflow_cli.audio.alignment_tokens import PAUSE_PHONES
from avflow_cli.data.t2t_dataset import read_metadata as read_ljspeech_metadata
from avflow_cli.audio.flite import TRACK_RATE, SpokenUtterance
from avflow_cli.errors import AvflowError, InputFileError

TRIM_MARGIN_S = 0.05  # speech kept around the first and last phone, as flite's utterances


def load_real_utterances(folder: str | Path) -> list[SpokenUtterance]:
    """Every entry of ``folder`` (metadata.csv, wavs/, alignments/ with phones) as an SpokenUtterance."""
    from avflow_cli.audio.io import read_audio, resample

    folder = Path(folder)
    rows = read_ljspeech_metadata(folder)
    out = []
    for item_id, text in rows:
        ali_path = folder / "alignments" / f"{item_id}.json"
        if not ali_path.is_file():
            raise InputFileError(ali_path, "file not found (real actor speech needs phone timing: "
                                           "make the folder with `avflow prep import asterisk`)")
        try:
            ali = json.loads(ali_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise InputFileError(ali_path, f"corrupt JSON ({err})") from err
        phones = [(str(p).lower(), float(s), float(e)) for p, s, e in ali.get("phones") or []]
        speech = [ph for ph in phones if ph[0] not in PAUSE_PHONES]
        if not speech:
            raise InputFileError(ali_path, "no phones (needs 'phones': [[phone, start_s, end_s], ...])")
        audio, sr = read_audio(folder / "wavs" / f"{item_id}.wav")
        mono = resample(audio.mean(axis=0), sr, TRACK_RATE).numpy()  # (S,) at TRACK_RATE
        t0 = max(0.0, speech[0][1] - TRIM_MARGIN_S)
        t1 = min(len(mono) / TRACK_RATE, speech[-1][2] + TRIM_MARGIN_S)
        clip = mono[int(round(t0 * TRACK_RATE)) : int(round(t1 * TRACK_RATE))].astype(np.float32)
        out.append(SpokenUtterance(
            text=str(ali.get("text") or text), voice=str(ali.get("voice") or f"real:{folder.name}"), audio=clip,
            phones=[(p, round(s - t0, 4), round(e - t0, 4)) for p, s, e in speech],
        ))
    if not out:
        raise AvflowError(f"{folder}: no utterances")
    return out


def cycle_utterances(utts: list[SpokenUtterance], rng: np.random.Generator) -> Iterator[SpokenUtterance]:
    """Endless reshuffled passes over the recordings: each is used once before any repeats."""
    while True:
        for i in rng.permutation(len(utts)):
            yield utts[i]


def fingerprint(folder: str | Path) -> str:
    """sha256 over metadata.csv and the alignments (recorded in corpus.json, so a changed folder
    is not mistaken for a finished corpus of the old one)."""
    folder = Path(folder)
    h = hashlib.sha256((folder / "metadata.csv").read_bytes())
    for path in sorted((folder / "alignments").glob("*.json")):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]
