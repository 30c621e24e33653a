"""Who speaks when in a 2-channel dyadic recording, and each speaker's clean channel.

Each close-talk channel also picks up the other person (cross-talk bleed: an attenuated,
slightly delayed copy). Per channel, webrtcvad decides speech on 10/20/30 ms frames of the
16 kHz signal, gated by energy above the channel's noise floor. Where both channels fire, a
channel much quieter than the other (by ``crosstalk_db``) only holds bleed and is switched
off; where both are loud, both people talk. Decisions are then smoothed: short gaps filled,
short blips dropped, a hangover added at the end of each segment (webrtcvad cuts word ends).
The output channel keeps speech and attenuates (or zeroes) everything else.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from avflow_cli.constants import TOKEN_SAMPLE_RATE
from avflow_cli.errors import AvflowError

VAD_SAMPLE_RATE = TOKEN_SAMPLE_RATE  # webrtcvad runs on 16 kHz
MIN_INPUT_RATE = 16000  # below this the VAD (and the 8 kHz-wide mel) would see upsampled audio
EVAL_FRAME_S = 0.01  # evaluation grid
NONSPEECH_MODES = ("attenuate", "zero", "keep")


@dataclass
class VadConfig:
    """Knobs of the separation; defaults chosen by a grid search on a 4-minute demo corpus (seed 1)."""

    aggressiveness: int = 2  # webrtcvad 0 (permissive) … 3 (strict)
    frame_ms: int = 30  # 10, 20 or 30 (webrtcvad's frame sizes)
    energy_gate_db: float = 10.0  # speech must be this far above the channel's noise floor
    crosstalk_db: float = 8.0  # both fire and this channel is this much quieter → bleed
    min_gap_ms: float = 250.0  # silences shorter than this inside speech are filled
    min_segment_ms: float = 120.0  # speech shorter than this is dropped
    hangover_ms: float = 60.0  # speech extended by this after each segment
    preroll_ms: float = 30.0  # and by this before it
    nonspeech: str = "attenuate"  # attenuate | zero | keep
    attenuation_db: float = -40.0  # gain of non-speech when attenuating

    def validate(self) -> None:
        if self.frame_ms not in (10, 20, 30):
            raise AvflowError(f"VAD frame length must be 10, 20 or 30 ms, got {self.frame_ms}")
        if not 0 <= self.aggressiveness <= 3:
            raise AvflowError(f"VAD aggressiveness must be 0..3, got {self.aggressiveness}")
        if self.nonspeech not in NONSPEECH_MODES:
            raise AvflowError(f"non-speech mode must be one of {NONSPEECH_MODES}, got {self.nonspeech!r}")
        for name in ("min_gap_ms", "min_segment_ms", "hangover_ms", "preroll_ms"):  # durations: 0 … 1 min
            value = getattr(self, name)
            if not (math.isfinite(value) and 0 <= value <= 60_000):
                raise AvflowError(f"VAD {name} must be between 0 and 60000 ms, got {value}")
        for name, low, high in (("energy_gate_db", -200, 200), ("crosstalk_db", -200, 200), ("attenuation_db", -200, 0)):
            value = getattr(self, name)
            if not (math.isfinite(value) and low <= value <= high):
                raise AvflowError(f"VAD {name} must be between {low} and {high} dB, got {value}")


@dataclass
class VadResult:
    """Frame decisions (frame_ms grid), segments in seconds and the cleaned channels."""

    frame_s: float
    speech: dict[str, np.ndarray]  # speaker -> (M,) bool
    segments: dict[str, list[tuple[float, float]]]
    audio: dict[str, np.ndarray]  # speaker -> (N,) float32 at the input rate
    sample_rate: int

    def to_json(self, config: VadConfig) -> dict[str, Any]:
        return {
            "sample_rate": self.sample_rate,
            "frame_ms": round(self.frame_s * 1000),
            "config": asdict(config),
            "segments": {k: [[round(s, 3), round(e, 3)] for s, e in v] for k, v in self.segments.items()},
            "speech_seconds": {k: round(float(m.sum()) * self.frame_s, 3) for k, m in self.speech.items()},
        }


# --- frame-level decisions -------------------------------------------------------------------
def _frames(x16: np.ndarray, frame_len: int) -> np.ndarray:
    """Cut 16 kHz audio into whole frames. (N,) -> (M, frame_len)"""
    m = len(x16) // frame_len
    return x16[: m * frame_len].reshape(m, frame_len)


def webrtc_decisions(x16: np.ndarray, frame_ms: int, aggressiveness: int) -> np.ndarray:
    """webrtcvad's speech flag per frame of 16 kHz float audio. (N,) -> (M,) bool"""
    import webrtcvad

    vad = webrtcvad.Vad(aggressiveness)
    frames = _frames(x16, VAD_SAMPLE_RATE * frame_ms // 1000)  # (M, L)
    pcm = (np.clip(frames, -1.0, 1.0) * 32767).astype("<i2")  # (M, L) int16
    return np.fromiter((vad.is_speech(row.tobytes(), VAD_SAMPLE_RATE) for row in pcm), dtype=bool, count=len(pcm))


def frame_energy_db(x16: np.ndarray, frame_ms: int) -> np.ndarray:
    """Mean-square energy per frame in dB. (N,) -> (M,)"""
    frames = _frames(x16, VAD_SAMPLE_RATE * frame_ms // 1000)  # (M, L)
    return 10 * np.log10(np.mean(frames.astype(np.float64) ** 2, axis=1) + 1e-12)


def noise_floor_db(energy_db: np.ndarray, percentile: float = 10.0) -> float:
    """The channel's background level: a low percentile of its frame energies."""
    return float(np.percentile(energy_db, percentile))


# --- smoothing -------------------------------------------------------------------------------
def _runs(mask: np.ndarray) -> np.ndarray:
    """Start/stop indices of True runs. (M,) bool -> (R, 2) int, stop exclusive."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return np.stack([np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)], 1)


def smooth_mask(mask: np.ndarray, frame_s: float, cfg: VadConfig) -> np.ndarray:
    """Fill short gaps, drop short segments, then pad each segment by pre-roll and hangover."""
    m = mask.copy()
    gaps = _runs(~m)
    short = gaps[(gaps[:, 1] - gaps[:, 0]) * frame_s < cfg.min_gap_ms / 1000]
    for a, b in short:
        if a > 0 and b < len(m):  # only gaps inside speech
            m[a:b] = True
    segs = _runs(m)
    for a, b in segs[(segs[:, 1] - segs[:, 0]) * frame_s < cfg.min_segment_ms / 1000]:
        m[a:b] = False
    pre = int(round(cfg.preroll_ms / 1000 / frame_s))
    post = int(round(cfg.hangover_ms / 1000 / frame_s))
    out = m.copy()
    for a, b in _runs(m):
        out[max(0, a - pre) : min(len(m), b + post)] = True
    return out


def mask_to_segments(mask: np.ndarray, frame_s: float) -> list[tuple[float, float]]:
    """True runs as (start_s, end_s) pairs."""
    return [(float(a * frame_s), float(b * frame_s)) for a, b in _runs(mask)]


def segments_to_mask(segments: list[tuple[float, float]] | list[list[float]], duration_s: float, frame_s: float) -> np.ndarray:
    """Rasterise segments onto a grid of frames (a frame is True when its centre is inside)."""
    n = int(np.floor(duration_s / frame_s + 1e-9))
    centres = (np.arange(n) + 0.5) * frame_s
    mask = np.zeros(n, bool)
    for s, e in segments:
        mask |= (centres >= s) & (centres < e)
    return mask


def gain_curve(mask: np.ndarray, frame_s: float, num_samples: int, sample_rate: int, floor_gain: float) -> np.ndarray:
    """Per-sample gain: 1 in speech, ``floor_gain`` elsewhere, linear ramps between frame centres."""
    centres = (np.arange(len(mask)) + 0.5) * frame_s  # (M,)
    gains = np.where(mask, 1.0, floor_gain)
    t = np.arange(num_samples) / sample_rate  # (N,)
    return np.interp(t, centres, gains).astype(np.float32)  # (N,)


# --- the separation --------------------------------------------------------------------------
def channel_speech(x16s: list[np.ndarray], cfg: VadConfig) -> list[np.ndarray]:
    """Raw per-channel speech decisions with energy gate and cross-talk suppression."""
    energies = [frame_energy_db(x, cfg.frame_ms) for x in x16s]
    m = min(len(e) for e in energies)
    energies = [e[:m] for e in energies]
    speech = []
    for x, e in zip(x16s, energies):
        v = webrtc_decisions(x, cfg.frame_ms, cfg.aggressiveness)[:m]  # (M,)
        speech.append(v & (e > noise_floor_db(e) + cfg.energy_gate_db))
    if len(speech) == 2:
        a, p = speech
        ea, ep = energies
        both = a & p
        a_bleed = both & (ea < ep - cfg.crosstalk_db)  # actor channel holds only the participant's bleed
        p_bleed = both & (ep < ea - cfg.crosstalk_db)
        # a channel whose VAD fires while the other is silent but it is only loud enough to be
        # the other's bleed cannot happen (the source would be active), so only `both` matters
        speech = [a & ~a_bleed, p & ~p_bleed]
    return speech


def separate(audio: np.ndarray, sample_rate: int, cfg: VadConfig | None = None, speakers: tuple[str, ...] = ("actor", "participant")) -> VadResult:
    """Speech decisions and cleaned channels of (C, N) audio, C = len(speakers) (1 or 2).

    shape: audio (C, N) at ``sample_rate`` -> VadResult with (N,) channels at the same rate.
    """
    from avflow_cli.audio.io import resample

    cfg = cfg or VadConfig()
    cfg.validate()
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 2 or audio.shape[0] != len(speakers):
        raise AvflowError(f"expected {len(speakers)}-channel audio (C, N), got shape {audio.shape}")
    if sample_rate < MIN_INPUT_RATE:
        raise AvflowError(f"sample rate {sample_rate} Hz is below the {MIN_INPUT_RATE} Hz the VAD and mel need")
    frame_s = cfg.frame_ms / 1000
    x16 = resample(audio, sample_rate, VAD_SAMPLE_RATE).numpy()  # (C, N16)
    if x16.shape[1] < VAD_SAMPLE_RATE * cfg.frame_ms // 1000:
        raise AvflowError(f"audio too short for one {cfg.frame_ms} ms VAD frame")
    raw = channel_speech(list(x16), cfg)
    floor_gain = {"attenuate": 10 ** (cfg.attenuation_db / 20), "zero": 0.0, "keep": 1.0}[cfg.nonspeech]
    speech, segments, cleaned = {}, {}, {}
    for name, ch, mask in zip(speakers, audio, raw):
        mask = smooth_mask(mask, frame_s, cfg)
        speech[name] = mask
        segments[name] = mask_to_segments(mask, frame_s)
        cleaned[name] = ch * gain_curve(mask, frame_s, len(ch), sample_rate, floor_gain)  # (N,)
    return VadResult(frame_s, speech, segments, cleaned, sample_rate)


# --- pauses in one channel (ASR segmentation) -------------------------------------------------
PAUSE_HOP_S = 0.01  # energy frames of 10 ms
PAUSE_PEAK_DB = 35.0  # active: within this many dB of the loudest frame ...
PAUSE_FLOOR_DB = 10.0  # ... and this far above the 10th-percentile (noise) level
PAUSE_MIN_S = 0.3  # shorter pauses do not split
PAUSE_PAD_S = 0.1  # each segment padded by this much on both sides
PAUSE_MIN_SEGMENT_S = 0.15  # shorter bursts (clicks) are dropped


def speech_segments(wav: np.ndarray, sr: int) -> list[tuple[int, int]]:
    """Sample ranges [a, b) of speech in one clean mono channel, split at pauses of ``PAUSE_MIN_S``.

    An energy detector at any rate (no resampling, no webrtcvad): a frame is active when louder
    than max(peak − ``PAUSE_PEAK_DB``, noise floor + ``PAUSE_FLOOR_DB``). Used to cut long
    synthesized speech into utterances an ASR decodes well (:mod:`avflow_cli.metrics.wer`).
    """
    x = np.asarray(wav, dtype=np.float64).reshape(-1)
    hop = max(1, int(round(sr * PAUSE_HOP_S)))
    n = len(x) // hop
    if n == 0:
        return []
    energy = 10.0 * np.log10(np.square(x[: n * hop].reshape(n, hop)).mean(axis=1) + 1e-10)  # (n,) dB
    active = energy > max(energy.max() - PAUSE_PEAK_DB, noise_floor_db(energy) + PAUSE_FLOOR_DB)
    idx = np.flatnonzero(active)
    if idx.size == 0:
        return []
    fps = sr / hop
    breaks = np.flatnonzero(np.diff(idx) > PAUSE_MIN_S * fps)  # gaps that split
    starts = np.concatenate([[idx[0]], idx[breaks + 1]])
    ends = np.concatenate([idx[breaks], [idx[-1]]]) + 1
    keep = (ends - starts) >= PAUSE_MIN_SEGMENT_S * fps
    pad = int(round(PAUSE_PAD_S * fps))
    return [(int(max(0, a - pad) * hop), int(min(n, b + pad) * hop)) for a, b in zip(starts[keep], ends[keep])]


# --- evaluation ------------------------------------------------------------------------------
def frame_scores(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Frame-level precision, recall, F1 and accuracy of boolean speech masks (same grid)."""
    n = min(len(pred), len(truth))
    p, t = pred[:n].astype(bool), truth[:n].astype(bool)
    tp, fp, fn = float((p & t).sum()), float((p & ~t).sum()), float((~p & t).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "accuracy": float((p == t).mean()) if n else 0.0}


def truth_segments(transcript: dict[str, Any], speaker: str, pause_phones: tuple[str, ...] = ("pau", "sil", "sp", "")) -> list[tuple[float, float]]:
    """Ground-truth speech of ``speaker`` from transcript turns (trimmed to non-pause phones)."""
    out = []
    for turn in transcript.get("turns", []):
        if turn.get("speaker") != speaker:
            continue
        phones = [p for p in turn.get("phones") or [] if p[0] not in pause_phones]
        if phones:
            out.append((float(phones[0][1]), float(phones[-1][2])))
        else:
            out.append((float(turn["start"]), float(turn["end"])))
    return out


def evaluate(result_segments: dict[str, list], transcript: dict[str, Any], duration_s: float, frame_s: float = EVAL_FRAME_S) -> dict[str, dict[str, float]]:
    """Per-speaker frame scores of predicted segments against transcript turn times."""
    scores = {}
    for speaker, segs in result_segments.items():
        truth = segments_to_mask(truth_segments(transcript, speaker), duration_s, frame_s)
        pred = segments_to_mask(segs, duration_s, frame_s)
        scores[speaker] = frame_scores(pred, truth)
    return scores
