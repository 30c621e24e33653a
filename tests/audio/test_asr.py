"""Speech → text for WER: greedy CTC decoding, offline pocketsphinx, backend choice."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from avflow_cli.audio import asr
from avflow_cli.audio.asr import ctc_greedy_decode, transcribe
from avflow_cli.audio.io import read_audio
from avflow_cli.constants import TOKEN_LABELS
from avflow_cli.errors import AvflowError, MissingCheckpointError

SENTENCE = "I would like to go to the store today and buy some bread and milk for the family."


def _one_hot(path: str) -> np.ndarray:
    """Logits whose argmax spells ``path`` frame by frame ('-' blank, '|' word boundary)."""
    idx = [TOKEN_LABELS.index(c) for c in path]
    logits = np.full((len(idx), len(TOKEN_LABELS)), -5.0, np.float32)
    logits[np.arange(len(idx)), idx] = 5.0
    return logits


def test_ctc_greedy_decode_merges_repeats_and_drops_blanks() -> None:
    assert ctc_greedy_decode(_one_hot("--HH-E-LL-L-OO||WW-O-RR-LD--")) == "hello world"
    assert ctc_greedy_decode(_one_hot("|-|I'M||-")) == "i'm"
    assert ctc_greedy_decode(np.zeros((0, 29))) == ""


@pytest.mark.skipif(shutil.which("flite") is None, reason="flite (Debian package) not installed")
def test_pocketsphinx_transcribes_clean_flite_speech(tmp_path: Path, no_checkpoints: Path) -> None:
    import jiwer

    wav = tmp_path / "slt.wav"
    subprocess.run(["flite", "-voice", "slt", "-t", SENTENCE, "-o", str(wav)], check=True)
    audio, sr = read_audio(wav)
    text, backend = transcribe(audio[0], sr)  # auto: no Wav2Vec2 weights here
    assert backend == "pocketsphinx"
    ref = re.sub(r"[^a-z' ]", "", SENTENCE.lower())
    assert jiwer.wer(ref, text) <= 0.1, text  # measured 0.00 on this 18-word sentence


def test_backend_errors(no_checkpoints: Path, tmp_path: Path) -> None:
    with pytest.raises(MissingCheckpointError, match="wav2vec2_fairseq_base_ls960_asr_ls960.pth"):
        transcribe(np.zeros(16000, np.float32), 16000, backend="wav2vec2")
    with pytest.raises(MissingCheckpointError):  # an explicit path never falls back silently
        transcribe(np.zeros(16000, np.float32), 16000, checkpoint=tmp_path / "missing.pth")
    with pytest.raises(AvflowError, match="unknown ASR backend"):
        transcribe(np.zeros(16000, np.float32), 16000, backend="whisperx")
    with pytest.raises(AvflowError, match="mono"):
        transcribe(np.zeros((2, 16000), np.float32), 16000, backend="pocketsphinx")


def test_wav2vec2_backend_decodes_the_model_logits(monkeypatch: pytest.MonkeyPatch) -> None:
    class FakeTokens:
        def logits(self, wav: np.ndarray, sr: int) -> np.ndarray:
            return _one_hot("-HI||THERE-")

    monkeypatch.setattr(asr, "_wav2vec2", lambda checkpoint, device: FakeTokens())
    monkeypatch.setattr("avflow_cli.checkpoints.find_checkpoint", lambda name, explicit=None: Path("x.pth"))
    assert transcribe(np.zeros(16000, np.float32), 16000) == ("hi there", "wav2vec2")
