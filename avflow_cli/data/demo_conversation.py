"""The demo corpus's conversations: who says what when, and the two-microphone recording of it.

Turns alternate (actor 1-3 sentences, participant 1-2) with pauses and back-channels, some
overlapping the actor; each speaker's utterances are summed into a clean track and mixed into a
2-channel 48 kHz capture with cross-talk bleed and room noise. The actor's sentences are flite's
by default, or real recordings with forced-aligned phones (data/real_speech.py).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources

import numpy as np
from scipy.ndimage import gaussian_filter1d

from avflow_cli.audio.flite import TRACK_RATE, Flite, SpokenUtterance
from avflow_cli.constants import CAPTURE_SAMPLE_RATE

ACTOR_VOICE = "slt"
PARTICIPANT_VOICES = ("rms", "awb")


def _resource_lines(name: str) -> list[str]:
    text = resources.files("avflow_cli.resources").joinpath(name).read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def load_sentences() -> list[str]:
    """The shipped public-domain sentences (the Harvard sentences, IEEE 1969)."""
    return _resource_lines("harvard_sentences.txt")


def load_backchannels() -> list[tuple[str, str | None]]:
    """Shipped back-channels as (text, flite phones or None when flite reads the text itself)."""
    out = []
    for line in _resource_lines("backchannels.txt"):
        text, _, phones = line.partition("|")
        out.append((text.strip(), phones.strip() or None))
    return out




@dataclass
class Placed:
    """An utterance placed in a session: start on the TRACK_RATE sample grid."""

    speaker: str  # "actor" | "participant"
    utt: SpokenUtterance
    start_sample: int
    backchannel: bool = False

    @property
    def start(self) -> float:
        return self.start_sample / TRACK_RATE

    @property
    def end(self) -> float:
        return self.start + self.utt.duration

    def abs_phones(self) -> list[tuple[str, float, float]]:
        return [(p, self.start + s, self.start + e) for p, s, e in self.utt.phones]


def _cycle(items: list[str], rng: np.random.Generator) -> Iterator[str]:
    """Endless reshuffled passes over ``items``."""
    while True:
        for i in rng.permutation(len(items)):
            yield items[i]


def plan_session(
    rng: np.random.Generator,
    flite: Flite,
    duration: float,
    actor_text: Iterator[str] | Iterator[SpokenUtterance],
    participant_text: Iterator[str],
    participant_voice: str,
    backchannels: list[tuple[str, str | None]],
) -> list[Placed]:
    """Alternating turns (actor 1-3 sentences, participant 1-2) with pauses and back-channels.

    The participant sometimes back-channels while the actor is speaking (overlap) or in the
    pause after an actor turn; turns never run past ``duration``. ``actor_text`` yields sentences
    flite speaks with ``ACTOR_VOICE``, or finished utterances (real recordings) used as they are.
    """
    placed: list[Placed] = []
    end_limit = duration - 0.25
    p_busy = 0.0  # the participant's channel is busy until then

    def put(speaker: str, utt: SpokenUtterance, at: float, bc: bool = False) -> Placed | None:
        item = Placed(speaker, utt, int(round(at * TRACK_RATE)), bc)
        if item.end > end_limit:
            return None
        placed.append(item)
        return item

    def backchannel(at: float) -> None:
        nonlocal p_busy
        if at < p_busy + 0.2:
            return
        text, phones = backchannels[int(rng.integers(len(backchannels)))]
        item = put("participant", flite.synth(text, participant_voice, phones), at, True)
        if item is not None:
            p_busy = item.end

    t = float(rng.uniform(0.3, 0.8))
    speaker = "actor" if rng.random() < 0.7 else "participant"
    while t < end_limit:
        n_sent = int(rng.integers(1, 4)) if speaker == "actor" else int(rng.integers(1, 3))
        for _ in range(n_sent):
            if speaker == "actor":
                line = next(actor_text)
                utt = line if isinstance(line, SpokenUtterance) else flite.synth(line, ACTOR_VOICE)
                item = put("actor", utt, t)
            else:
                item = put("participant", flite.synth(next(participant_text), participant_voice), t)
            if item is None:
                return sorted(placed, key=lambda p: p.start_sample)
            if speaker == "participant":
                p_busy = item.end
            elif rng.random() < 0.45:  # overlapping back-channel late in the actor's sentence
                backchannel(item.start + item.utt.duration * float(rng.uniform(0.45, 0.85)))
            t = item.end + float(rng.uniform(0.15, 0.45))
        if speaker == "actor" and rng.random() < 0.3:  # acknowledgement, then the actor goes on
            backchannel(t + float(rng.uniform(0.0, 0.2)))
            t = max(t, p_busy) + float(rng.uniform(0.25, 0.6))
            continue
        t = max(t, p_busy) + float(rng.uniform(0.25, 0.9))
        speaker = "participant" if speaker == "actor" else "actor"
    return sorted(placed, key=lambda p: p.start_sample)


def speaker_track(placed: list[Placed], speaker: str, n_samples: int) -> np.ndarray:
    """Clean 48 kHz track of one speaker (S,): utterances summed at TRACK_RATE, resampled once."""
    from avflow_cli.audio.io import resample

    n16 = int(math.ceil(n_samples * TRACK_RATE / CAPTURE_SAMPLE_RATE))
    track = np.zeros(n16, dtype=np.float32)
    for p in placed:
        if p.speaker == speaker:
            seg = p.utt.audio[: max(0, n16 - p.start_sample)]
            track[p.start_sample : p.start_sample + len(seg)] += seg
    up = resample(track, TRACK_RATE, CAPTURE_SAMPLE_RATE).numpy()  # (S',)
    return np.pad(up, (0, max(0, n_samples - len(up))))[:n_samples]


def _delay(x: np.ndarray, samples: int) -> np.ndarray:
    return np.concatenate([np.zeros(samples, dtype=x.dtype), x[: len(x) - samples]])


def mix_dyadic(
    rng: np.random.Generator, actor: np.ndarray, participant: np.ndarray
) -> tuple[np.ndarray, dict[str, float]]:
    """Two-microphone recording (2, S): each channel hears its speaker, an attenuated, delayed
    copy of the other (cross-talk bleed) and its own low-passed background noise."""
    bleed_db = float(rng.uniform(-22.0, -16.0))
    delay_ms = float(rng.uniform(1.5, 4.0))
    noise_db = float(rng.uniform(-56.0, -48.0))
    gain, lag = 10 ** (bleed_db / 20), int(round(delay_ms * CAPTURE_SAMPLE_RATE / 1000))
    noise = rng.normal(size=(2, len(actor)))
    noise = gaussian_filter1d(noise, sigma=1.5, axis=1)  # soften white noise towards room tone
    noise *= 10 ** (noise_db / 20) / max(float(noise.std()), 1e-9)
    mix = np.stack([actor + gain * _delay(participant, lag), participant + gain * _delay(actor, lag)]) + noise
    meta = {"bleed_db": round(bleed_db, 2), "bleed_delay_ms": round(delay_ms, 3),
            "noise_dbfs": round(noise_db, 2)}
    return np.clip(mix, -1.0, 1.0).astype(np.float32), meta

