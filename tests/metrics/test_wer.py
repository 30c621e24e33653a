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
