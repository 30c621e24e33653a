"""WER: normalisation, corpus counts, and a clean flite `slt` utterance through the offline ASR."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from avflow_cli.errors import AvflowError
from avflow_cli.metrics.wer import WordErrors, normalize_text, transcribe, wer, word_errors

SENTENCE = "The quick brown fox jumps over the lazy dog near the river bank."


def test_identical_transcripts_give_zero_and_normalisation_is_standard() -> None:
    assert wer(SENTENCE, SENTENCE) == 0.0
    assert wer("Hello, World! It's fine.", "hello world it is fine") == 0.0
    assert normalize_text("  Don't   STOP.  ") == "do not stop"


def test_known_errors_and_corpus_pooling() -> None:
    e = word_errors("a b c d", "a x c")  # 1 substitution + 1 deletion
    assert (e.errors, e.words) == (2, 4)
    assert (e + word_errors("e f", "e f")).wer == pytest.approx(2 / 6)
    assert word_errors("a b", "").errors == 2
    assert WordErrors().wer != WordErrors().wer  # NaN without reference words
    with pytest.raises(AvflowError):
        word_errors("  ", "a")


@pytest.mark.skipif(shutil.which("flite") is None, reason="flite is not installed")
def test_clean_flite_slt_utterance_has_zero_wer(tmp_path) -> None:
    from avflow_cli.audio.io import read_audio

    wav_path = tmp_path / "slt.wav"
    subprocess.run(["flite", "-voice", "slt", "-t", SENTENCE, "-o", str(wav_path)], check=True)
    audio, sr = read_audio(wav_path)
    text, backend = transcribe(audio[0], sr)
    assert backend  # the backend that ran is always named
    assert wer(SENTENCE, text) == 0.0


def test_speech_segments_split_at_pauses() -> None:
    import numpy as np

    from avflow_cli.audio.vad import speech_segments

    sr = 16000
    rng = np.random.default_rng(0)
    x = rng.normal(size=sr * 3) * 1e-4  # 3 s of faint noise
    x[int(0.5 * sr) : int(1.0 * sr)] += rng.normal(size=int(0.5 * sr)) * 0.3  # speech 0.5-1.0 s
    x[int(1.1 * sr) : int(1.4 * sr)] += rng.normal(size=int(0.3 * sr)) * 0.3  # 0.1 s pause: same segment
    x[int(2.2 * sr) : int(2.6 * sr)] += rng.normal(size=int(0.4 * sr)) * 0.3  # after a 0.8 s pause
    x[int(1.8 * sr) : int(1.85 * sr)] += rng.normal(size=int(0.05 * sr)) * 0.3  # a 50 ms click: dropped
    segs = [(a / sr, b / sr) for a, b in speech_segments(x, sr)]
    assert len(segs) == 2
    assert segs[0] == pytest.approx((0.4, 1.5), abs=0.02) and segs[1] == pytest.approx((2.1, 2.7), abs=0.02)
    assert speech_segments(np.zeros(sr), sr) == []  # digital silence has no speech
