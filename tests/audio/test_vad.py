"""VAD separation of a dyadic 2-channel recording made from real (flite) speech with bleed."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from avflow_cli.audio import vad
from avflow_cli.audio.io import resample
from avflow_cli.errors import AvflowError

SR = 48000
pytestmark = pytest.mark.skipif(shutil.which("flite") is None, reason="flite is not installed")


@lru_cache(maxsize=8)
def speech(voice: str, text: str) -> tuple[np.ndarray, float, float]:
    """48 kHz flite speech and the (start, end) of its non-pause phones."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "s.wav"
        out = subprocess.run(["flite", "-voice", voice, "-t", text, "-o", str(path), "-psdur"],
                             capture_output=True, text=True, check=True).stdout
        x, sr = sf.read(str(path), dtype="float32")
    ends = [(p.rsplit(":", 1)[0], float(p.rsplit(":", 1)[1])) for p in out.split()]
    starts = [0.0] + [e for _, e in ends[:-1]]
    spoken = [(s, e) for (name, e), s in zip(ends, starts) if name != "pau"]
    return resample(x, sr, SR).numpy(), spoken[0][0], spoken[-1][1]


def dyadic(bleed_db: float = -18.0) -> tuple[np.ndarray, dict[str, list[tuple[float, float]]], float]:
    """Actor, participant, then both overlapping; returns (2, N) audio, truth segments, duration."""
    plan = [("actor", "slt", "The birch canoe slid on the smooth planks.", 0.4),
            ("participant", "rms", "It is easy to tell the depth of a well.", 3.6),
            ("actor", "slt", "Glue the sheet to the dark blue background.", 7.0),
            ("participant", "rms", "Yeah, right.", 8.0)]  # overlaps the actor: both truly speak
    duration = 11.0
    clean = np.zeros((2, int(duration * SR)), np.float32)
    truth: dict[str, list[tuple[float, float]]] = {"actor": [], "participant": []}
    for who, voice, text, start in plan:
        x, a, b = speech(voice, text)
        i = int(start * SR)
        clean[0 if who == "actor" else 1, i : i + len(x)] += 0.8 * x
        truth[who].append((start + a, start + b))
    g, d = 10 ** (bleed_db / 20), SR // 1000
    audio = clean.copy()
    audio[0, d:] += g * clean[1, :-d]
    audio[1, d:] += g * clean[0, :-d]
    audio += np.random.default_rng(0).normal(scale=10 ** (-55 / 20), size=audio.shape).astype(np.float32)
    return audio, truth, duration


def scores(result: vad.VadResult, truth: dict, duration: float) -> dict[str, dict[str, float]]:
    return {k: vad.frame_scores(vad.segments_to_mask(result.segments[k], duration, 0.01),
                                vad.segments_to_mask(truth[k], duration, 0.01)) for k in truth}


def test_separates_speakers_with_bleed() -> None:
    audio, truth, duration = dyadic()
    result = vad.separate(audio, SR)
    for who, sc in scores(result, truth, duration).items():
        assert sc["f1"] > 0.9, (who, sc)
        assert sc["recall"] > 0.95, (who, sc)
    # while only the participant talks (3.6 s .. 6.9 s), the actor channel is pure bleed
    frame = result.frame_s
    assert not result.speech["actor"][int(4.5 / frame) : int(6.0 / frame)].any()


def test_crosstalk_suppression_is_what_removes_bleed() -> None:
    audio, truth, duration = dyadic(bleed_db=-12.0)
    with_ct = scores(vad.separate(audio, SR), truth, duration)
    without = scores(vad.separate(audio, SR, vad.VadConfig(crosstalk_db=200.0)), truth, duration)
    assert with_ct["actor"]["precision"] > without["actor"]["precision"] + 0.15
    assert with_ct["actor"]["precision"] > 0.85


@pytest.mark.parametrize("frame_ms", [10, 20, 30])
def test_frame_sizes(frame_ms: int) -> None:
    audio, truth, duration = dyadic()
    result = vad.separate(audio, SR, vad.VadConfig(frame_ms=frame_ms))
    assert result.frame_s == frame_ms / 1000
    assert min(s["f1"] for s in scores(result, truth, duration).values()) > 0.85


def test_nonspeech_modes() -> None:
    audio, _, _ = dyadic()
    zero = vad.separate(audio, SR, vad.VadConfig(nonspeech="zero"))
    keep = vad.separate(audio, SR, vad.VadConfig(nonspeech="keep"))
    att = vad.separate(audio, SR, vad.VadConfig(nonspeech="attenuate", attenuation_db=-20))
    np.testing.assert_allclose(keep.audio["actor"], audio[0], atol=1e-6)
    off = ~np.repeat(zero.speech["actor"], int(zero.frame_s * SR))  # frames clearly off (ramps aside)
    off = off & np.roll(off, int(zero.frame_s * SR)) & np.roll(off, -int(zero.frame_s * SR))
    n = min(len(off), len(audio[0]))
    assert np.all(zero.audio["actor"][:n][off[:n]] == 0)
    ratio = att.audio["actor"][:n][off[:n]] / np.where(audio[0][:n][off[:n]] == 0, 1, audio[0][:n][off[:n]])
    np.testing.assert_allclose(ratio, 0.1, atol=1e-3)
    assert zero.audio["actor"].shape == audio[0].shape


def test_smoothing_fills_gaps_and_drops_blips() -> None:
    cfg = vad.VadConfig(min_gap_ms=100, min_segment_ms=60, hangover_ms=0, preroll_ms=0)
    m = np.zeros(100, bool)
    m[10:30] = True
    m[32:50] = True  # gap of 2 frames (20 ms) → filled
    m[70:72] = True  # 20 ms blip → dropped
    out = vad.smooth_mask(m, 0.01, cfg)
    assert out[10:50].all() and not out[60:].any() and not out[:10].any()
    padded = vad.smooth_mask(m, 0.01, vad.VadConfig(min_gap_ms=100, min_segment_ms=60, hangover_ms=50, preroll_ms=20))
    assert padded[8:55].all() and not padded[56:].any() and not padded[:8].any()


def test_frame_scores() -> None:
    truth = np.array([1, 1, 1, 1, 0, 0, 0, 0], bool)
    pred = np.array([1, 1, 0, 0, 1, 0, 0, 0], bool)
    s = vad.frame_scores(pred, truth)
    assert s["precision"] == pytest.approx(2 / 3) and s["recall"] == pytest.approx(0.5)
    assert s["f1"] == pytest.approx(2 * (2 / 3) * 0.5 / (2 / 3 + 0.5))


def test_truth_segments_trim_pauses() -> None:
    transcript = {"turns": [{"speaker": "actor", "start": 1.0, "end": 3.0, "phones": [["pau", 1.0, 1.2], ["ah", 1.2, 2.5], ["pau", 2.5, 3.0]]},
                            {"speaker": "participant", "start": 4.0, "end": 5.0}]}
    assert vad.truth_segments(transcript, "actor") == [(1.2, 2.5)]
    assert vad.truth_segments(transcript, "participant") == [(4.0, 5.0)]


def test_bad_input() -> None:
    audio, _, _ = dyadic()
    with pytest.raises(AvflowError, match="2-channel"):
        vad.separate(audio[:1], SR)
    with pytest.raises(AvflowError, match="below"):
        vad.separate(audio[:, ::6], 8000)
    with pytest.raises(AvflowError, match="10, 20 or 30"):
        vad.separate(audio, SR, vad.VadConfig(frame_ms=25))
    with pytest.raises(AvflowError, match="too short"):
        vad.separate(audio[:, :100], SR)
