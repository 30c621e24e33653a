"""Incremental recognition: every sample decoded once, the same words as decoding the utterance at once."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from scipy.signal import resample_poly

from avflow_cli.live.participant import StreamResampler
from avflow_cli.live.recognizer import StreamingRecognizer, live_decoder
from tests.live.conftest import real_data


def _incremental(x16: np.ndarray, piece: int = 320) -> StreamingRecognizer:
    rec = StreamingRecognizer()
    for a in range(0, len(x16), piece):
        rec.push(x16[a : a + piece])
    rec.finish()
    return rec


def _at_once(x16: np.ndarray, rec: StreamingRecognizer) -> list[str]:
    """Each utterance the recogniser found, decoded in one call from the same initial state."""
    from avflow_cli.audio.asr import pcm16
    from avflow_cli.participant.tokens import _segments

    decoder, cmn = live_decoder()
    decoder.set_cmn(cmn)
    words = []
    for u in rec.utterances:
        decoder.start_utt()
        decoder.process_raw(pcm16(x16[int(round(u.start * 16000)) : int(round(u.end * 16000))]), False, False)
        decoder.end_utt()
        words += [w.upper() for w, _, _ in _segments(decoder)]
    return words


def test_each_sample_is_decoded_once_with_the_same_words(flite_speech) -> None:
    x, sr = sf.read(str(flite_speech), dtype="float32")
    assert sr == 16000
    rec = _incremental(x)
    assert len(rec.utterances) >= 1 and rec.current is None
    words = [w for u in rec.utterances for w, _, _ in u.words]
    assert len(words) >= 5 and "GOOD" in words
    spoken = sum(int(round((u.end - u.start) * 16000)) for u in rec.utterances)
    assert rec.samples_decoded == spoken <= len(x)  # silence is never decoded, speech once
    assert rec.decoder_calls <= len(x) // 320 + len(rec.utterances)  # at most one call per piece
    assert rec.utterances[0].start > 0.1 and rec.utterances[-1].end < len(x) / sr  # the padding stayed out
    assert words == _at_once(x, rec)
    assert rec.transcript() == " ".join(words).lower()


def test_partial_words_are_known_while_speaking(flite_speech) -> None:
    x, _ = sf.read(str(flite_speech), dtype="float32")
    rec = StreamingRecognizer()
    half = len(x) // 2
    rec.push(x[:half])
    assert rec.current is not None and rec.current.words  # mid-utterance: the partial hypothesis
    assert rec.current.start <= rec.settled_s <= half / 16000
    rec.push(x[half:])
    rec.finish()
    assert rec.settled_s == pytest.approx(rec.heard_s)


@pytest.mark.real_data
def test_librivox_incremental_equals_whole_utterance_decoding() -> None:
    from avflow_cli.audio.asr import decode_utterance, pcm16
    from avflow_cli.participant.tokens import _segments

    wav = real_data("pocketsphinx") / "test/data/librivox/sense_and_sensibility_01_austen_64kb-0880.wav"
    x, sr = sf.read(str(wav), dtype="float32")
    rec = _incremental(x)
    decoder, cmn = live_decoder()
    decoder.set_cmn(cmn)
    u = rec.utterances[0]
    decode_utterance(decoder, pcm16(x[int(u.start * sr) : int(round(u.end * sr))]))  # whole utterance, batch CMN
    whole = [w.upper() for w, _, _ in _segments(decoder)]
    assert rec.transcript().upper().split() == whole
    assert {"he", "was", "not", "young", "man"} <= set(rec.transcript().split())  # "he was not an ill disposed young man"


@pytest.mark.parametrize("rate", [44100, 48000, 22050])
def test_stream_resampler_equals_resampling_the_whole(rate: int) -> None:
    rng = np.random.default_rng(rate)
    x = rng.normal(size=rate).astype(np.float32) * 0.1
    rs = StreamResampler(rate)
    out, pos = [], 0
    while pos < len(x):
        n = int(rng.integers(1, rate // 10))
        out.append(rs.push(x[pos : pos + n]))
        pos += n
    out.append(rs.flush())
    y = np.concatenate(out)
    ref = resample_poly(x, rs.up, rs.down)
    assert abs(len(y) - len(ref)) <= 1
    n = min(len(y), len(ref)) - 64  # the very end: zeros as right context either way
    assert np.abs(y[:n] - ref[:n]).max() < 1e-5
