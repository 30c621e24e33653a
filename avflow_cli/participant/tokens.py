"""Participant tokens (29-d character logits at 50 Hz) from any speech, through the model's extractor.

AV-Flow reads the participant's tokens from the same extractor as its own input tokens (prep
gives both channels one source; the model config records it as ``token_source``). Two kinds:

- ``wav2vec2``: Wav2Vec2 ASR base-960h logits (``avflow_cli.audio.asr_tokens``); needs its weights.
- ``alignment``: CTC-shaped log-posteriors built from word timing (``avflow_cli.audio.alignment_tokens``).
  On the demo corpus the timing is flite's exact phone timing; for a user's recording there is no
  transcript, so the **offline substitute** recognises the words with pocketsphinx (its English
  model ships in its wheel), force-aligns that transcript to the audio for word boundaries, and
  turns the timed words into exactly the same posterior form. It works on any English speech;
  recognition errors become token errors, which is why it is named in every output's metadata.

``choose_extractor`` picks the one that matches the model, or says clearly why it cannot.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

import numpy as np

from avflow_cli.constants import TOKEN_DIM, TOKEN_SAMPLE_RATE
from avflow_cli.errors import AvflowError

EXTRACTORS = ("auto", "wav2vec2", "pocketsphinx")
POCKETSPHINX_NAME = "pocketsphinx recognition + forced alignment → alignment-token posteriors (offline substitute)"
WAV2VEC2_NAME = "wav2vec2_asr_base_960h"
PS_FRAME_RATE = 100.0  # pocketsphinx's feature frames per second
_ALT_PRON = re.compile(r"\(\d+\)$")
VAD_FRAME_MS = 30
VAD_AGGRESSIVENESS = 2
SPEECH_FLOOR_DB = -55.0  # frames quieter than this are never speech, whatever the VAD says
MIN_VOICED_SHARE = 0.2  # a recognised word needs this share of voiced frames in its span


def token_kinds(token_source: str) -> frozenset[str]:
    """Kinds in a recorded token source (``"alignment (alignment)"`` → {"alignment"})."""
    parts = [p.strip() for p in str(token_source or "").split(" + ")]
    return frozenset(p.split(" ", 1)[0] for p in parts if p) - {"precomputed"}


def choose_extractor(token_source: str, requested: str = "auto") -> tuple[str, str]:
    """(extractor, note): ``"wav2vec2"`` or ``"pocketsphinx"`` for a model trained on ``token_source``.

    auto: alignment-trained → pocketsphinx substitute; wav2vec2-trained → Wav2Vec2 (its weights
    must be present: a substitute would feed logits of another kind); unrecorded → Wav2Vec2 when
    its weights are found, else pocketsphinx. An explicit request is honoured with a warning note
    when it differs from what the model was trained on.
    """
    from avflow_cli.checkpoints import find_checkpoint

    if requested not in EXTRACTORS:
        raise AvflowError(f"unknown participant token extractor {requested!r}; choose {', '.join(EXTRACTORS)}")
    kinds = token_kinds(token_source)
    trained = "wav2vec2" if kinds == {"wav2vec2"} else "alignment" if kinds == {"alignment"} else "unknown"
    have_w2v = find_checkpoint("wav2vec2") is not None
    if requested == "auto":
        if trained == "wav2vec2":
            if not have_w2v:
                raise AvflowError(
                    "this model was trained on Wav2Vec2 participant tokens but the Wav2Vec2 weights "
                    "(wav2vec2_fairseq_base_ls960_asr_ls960.pth) are not in $AVFLOW_CHECKPOINTS or the torch hub "
                    "cache; place them there, or force the offline substitute with --participant-extractor pocketsphinx"
                )
            return "wav2vec2", "Wav2Vec2 (the model's token extractor)"
        if trained == "alignment":
            return "pocketsphinx", "pocketsphinx substitute for the model's alignment tokens"
        choice = "wav2vec2" if have_w2v else "pocketsphinx"
        return choice, f"model does not record its token extractor; using {choice}"
    expected = {"wav2vec2": "wav2vec2", "alignment": "pocketsphinx"}.get(trained)
    if expected is not None and expected != requested:
        return requested, (f"warning: model trained on {trained} tokens, participant tokens forced to {requested} "
                           "(another kind of logits: guidance will be unreliable)")
    return requested, f"{requested} (requested)"


def _segments(dec: Any) -> list[tuple[str, float, float]]:
    out = []
    for seg in dec.seg() or []:  # None when nothing was recognised
        word = _ALT_PRON.sub("", seg.word)
        if word.startswith(("<", "[")) or word in ("sil", "++garbage++"):
            continue
        out.append((word, seg.start_frame / PS_FRAME_RATE, (seg.end_frame + 1) / PS_FRAME_RATE))
    return out


def voiced_frames(wav16: np.ndarray) -> np.ndarray:
    """webrtcvad speech flags (M,) of 16 kHz audio, one per ``VAD_FRAME_MS``, above an energy floor."""
    from avflow_cli.audio.vad import frame_energy_db, webrtc_decisions

    x = np.asarray(wav16, np.float32)
    if len(x) < VAD_FRAME_MS * 16:
        return np.zeros(0, bool)
    flags = webrtc_decisions(x, VAD_FRAME_MS, VAD_AGGRESSIVENESS)
    loud = frame_energy_db(x, VAD_FRAME_MS)[: len(flags)] > SPEECH_FLOOR_DB
    return flags & loud


def _voiced_share(voiced: np.ndarray, start: float, end: float) -> float:
    """Share of voiced VAD frames in [start, end) seconds."""
    a = int(start * 1000 / VAD_FRAME_MS)
    b = max(a + 1, int(np.ceil(end * 1000 / VAD_FRAME_MS)))
    seg = voiced[a:b]
    return float(seg.mean()) if seg.size else 0.0


def pocketsphinx_words(wav16: np.ndarray) -> list[tuple[str, float, float]]:
    """Timed words (WORD, start_s, end_s) of 16 kHz mono speech: recognise, then force-align.

    Words over stretches without voice activity (webrtcvad) are dropped: the recogniser's language
    model fills silence with words ("dog" in digital zeros). The alignment pass re-times the
    recognised words against the audio with the transcript fixed,
    which gives tighter boundaries than the recognition lattice; when it fails (rare: a word the
    aligner rejects), the recognition timing is kept.
    """
    from avflow_cli.audio.asr import decode_utterance, pcm16, pocketsphinx_decoder

    voiced = voiced_frames(wav16)  # (M,) per VAD_FRAME_MS
    if not voiced.any():
        return []  # the recogniser hallucinates words in silence ("dog" in digital zeros)
    pcm = pcm16(wav16)
    recog, align = pocketsphinx_decoder(), pocketsphinx_decoder(align=True)
    decode_utterance(recog, pcm)
    words = [w for w in _segments(recog) if _voiced_share(voiced, w[1], w[2]) >= MIN_VOICED_SHARE]
    if not words:
        return []
    try:
        align.set_align_text(" ".join(w for w, _, _ in words))
        decode_utterance(align, pcm)
        aligned = _segments(align)
    except RuntimeError:
        aligned = []
    if [w for w, _, _ in aligned] == [w for w, _, _ in words]:
        words = aligned
    return [(w.upper(), s, e) for w, s, e in words]


def pocketsphinx_tokens(wav: np.ndarray, sample_rate: int) -> tuple[np.ndarray, list[tuple[str, float, float]]]:
    """Alignment-form token logits (N_tok, 29) at 50 Hz for any speech, and the timed words used."""
    from avflow_cli.audio.alignment_tokens import ctc_logits, normalize_word, num_token_frames, phone_spans
    from avflow_cli.audio.io import resample

    x16 = resample(np.asarray(wav, np.float32), int(sample_rate), TOKEN_SAMPLE_RATE).numpy()  # (N16,)
    words = pocketsphinx_words(x16)
    spans = [s for s in ((normalize_word(w), s, e) for w, s, e in words) if s[0]]
    phones = phone_spans({"words": spans})  # dictionary pronunciations spread over each word
    logits = ctc_logits(spans, num_token_frames(len(x16) / TOKEN_SAMPLE_RATE), phones)
    return logits, words


@lru_cache(maxsize=1)
def _wav2vec2() -> Any:
    from avflow_cli.audio.asr_tokens import Wav2Vec2Tokens

    return Wav2Vec2Tokens(device="cpu")


def extract_tokens(wav: np.ndarray, sample_rate: int, extractor: str) -> tuple[np.ndarray, dict[str, Any]]:
    """Participant token logits (N_tok, 29) at 50 Hz and a record of what ran (for meta.json)."""
    if extractor == "wav2vec2":
        logits = np.asarray(_wav2vec2().logits(wav, sample_rate), np.float32)
        return logits, {"extractor": WAV2VEC2_NAME}
    if extractor == "pocketsphinx":
        logits, words = pocketsphinx_tokens(wav, sample_rate)
        return logits, {"extractor": POCKETSPHINX_NAME, "words": " ".join(w for w, _, _ in words).lower()}
    raise AvflowError(f"unknown participant token extractor {extractor!r}")


def silence_tokens(num_frames: int, token_source: str) -> np.ndarray:
    """Token rows (num_frames, 29) meaning "no speech" in the model's token kind (alignment form:
    the blank posterior; Wav2Vec2 models get the same blank-dominant rows when its weights are absent)."""
    from avflow_cli.audio.alignment_tokens import ctc_logits

    if token_kinds(token_source) == {"wav2vec2"}:
        from avflow_cli.checkpoints import find_checkpoint

        if find_checkpoint("wav2vec2") is not None:
            row = _wav2vec2().logits(np.zeros(TOKEN_SAMPLE_RATE, np.float32), TOKEN_SAMPLE_RATE).mean(axis=0)
            return np.repeat(row[None].astype(np.float32), num_frames, axis=0)
    out = ctc_logits([], max(1, num_frames))[:num_frames]
    assert out.shape[1] == TOKEN_DIM
    return out
