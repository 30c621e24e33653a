"""flite, the speech synthesiser behind the demo corpus, the vocoder trainer and the probe.

flite prints every phone with its end time (``-psdur``), so the phone timing of its speech is
exact: the demo corpus drives the avatar's face from it, the vocoder trainer (train/vocoder.py)
and the probe (metrics/probe.py) speak sentences with it. One :class:`Flite` runs the executable
per sentence and caches the results; :class:`SpokenUtterance` is one trimmed sentence with its phones
(the same shape real speech gets from forced alignment, see data/real_speech.py).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avflow_cli.errors import AvflowError

TRACK_RATE = 16000  # flite's native rate: speaker tracks are assembled here, then resampled once
INSTALL_HINT = "run `make install` or `sudo apt-get install flite`"


@dataclass
class SpokenUtterance:
    """One synthesised sentence, trimmed to its speech with a short margin."""

    text: str
    voice: str
    audio: np.ndarray  # (S,) float32 at TRACK_RATE
    phones: list[tuple[str, float, float]]  # (phone, start_s, end_s) from the trimmed start, no "pau"

    @property
    def duration(self) -> float:
        return len(self.audio) / TRACK_RATE


def parse_psdur(text: str) -> list[tuple[str, float, float]]:
    """Parse flite's ``-psdur`` output ``pau:0.184 dh:0.228 ...`` (phone:end time) into spans."""
    spans, start = [], 0.0
    for item in text.split():
        phone, sep, end = item.rpartition(":")
        if not sep:
            continue
        try:
            end_s = float(end)
        except ValueError:
            continue
        spans.append((phone, start, end_s))
        start = end_s
    return spans


def find_flite() -> str:
    """Path of the flite executable, or a one-line error telling how to install it."""
    exe = shutil.which("flite")
    if exe is None:
        raise AvflowError(f"flite (speech synthesiser) not found: {INSTALL_HINT}")
    return exe


class Flite:
    """Runs flite per sentence and caches results (back-channels repeat)."""

    TRIM_MARGIN_S = 0.05

    def __init__(self, exe: str | None = None) -> None:
        self.exe = exe or find_flite()
        self._cache: dict[tuple[str, str, str | None], SpokenUtterance] = {}
        self._tmp = tempfile.TemporaryDirectory(prefix="avflow-flite-")

    def version(self) -> str:
        out = subprocess.run([self.exe, "--version"], capture_output=True, text=True, check=False)
        lines = [ln.strip() for ln in (out.stdout + out.stderr).splitlines() if "version" in ln]
        return lines[0] if lines else "flite (unknown version)"

    def close(self) -> None:
        self._tmp.cleanup()

    def synth(self, text: str, voice: str, phones: str | None = None) -> SpokenUtterance:
        """Speak ``text`` (or the flite ``phones`` string, labelled ``text``) with ``voice``."""
        from avflow_cli.audio.io import read_audio, resample

        key = (text, voice, phones)
        if key in self._cache:
            return self._cache[key]
        wav = Path(self._tmp.name) / "utt.wav"
        source = ["-p", f"pau {phones} pau"] if phones else ["-t", text]
        proc = subprocess.run(
            [self.exe, "-voice", voice, *source, "-o", str(wav), "-psdur"],
            capture_output=True, text=True, check=False,
        )
        spans = parse_psdur(proc.stdout)
        if proc.returncode != 0 or not wav.is_file() or not spans:
            why = proc.stderr.strip() or "no output"
            raise AvflowError(f"flite failed on voice {voice!r} for {text!r}: {why}")
        audio, sr = read_audio(wav)
        mono = audio[0]  # (S,)
        if sr != TRACK_RATE:
            mono = resample(mono, sr, TRACK_RATE).numpy()
        speech = [s for s in spans if s[0] != "pau"]
        if not speech:
            raise AvflowError(f"flite produced no phones for {text!r}")
        t0 = max(0.0, speech[0][1] - self.TRIM_MARGIN_S)
        t1 = min(len(mono) / TRACK_RATE, speech[-1][2] + self.TRIM_MARGIN_S)
        clip = mono[int(round(t0 * TRACK_RATE)) : int(round(t1 * TRACK_RATE))]
        clip = (0.5 / max(float(np.abs(clip).max()), 1e-4)) * clip  # peak-normalise to -6 dBFS
        utt = SpokenUtterance(
            text=text,
            voice=voice,
            audio=clip.astype(np.float32),
            phones=[(p, round(s - t0, 4), round(e - t0, 4)) for p, s, e in speech],
        )
        self._cache[key] = utt
        return utt

