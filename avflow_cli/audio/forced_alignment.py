"""Phone and word timing of real speech with a known transcript: pocketsphinx forced alignment.

The demo corpus gets exact phone timing from flite; a real recording has only its text. We
align that text to the audio with pocketsphinx's US-English acoustic model and CMU dictionary
(they ship inside its wheel, so this works offline): a first pass finds the words, a second pass
(``set_alignment``) the phones inside them. Phones come back in flite's naming (lower-case
ARPAbet, ``pau`` for silence), so every consumer of flite timing (visemes, alignment tokens)
reads them unchanged.

An alignment can "succeed" on audio that says something else, so :func:`check_transcript`
compares it with the best free phone sequence (pocketsphinx's phone loop, "allphone") on the same
audio, the classic acoustic confidence of a forced alignment: the text's path scores nearly as
well as the free path when the audio says the text, clearly worse when it does not. The ratio of
the two (pocketsphinx's normalised path scores) below ``MIN_SCORE_RATIO`` refuses the pair.
Measured on Asterisk prompts: correct texts 0.98–1.10, wrong texts (another prompt's text, one
wrong word in a one-word prompt) 0.29–0.88; narrow-band audio scores lower (flite speech through
8 kHz: 0.93 where its 16 kHz original scores 0.97), so the threshold is a parameter. (Free recognition with the language model was tried
first and misjudges short prompts: "agent logged off" was heard as "they didn't log on".)

Prompts cut tight at both ends (speech from the first sample to the last, as many Asterisk
prompts are) leave the phone pass no room for its edge silences, and pocketsphinx stops with
"Failed to stop utterance processing" (18 of the 478 Asterisk prompts, 0.8–7 s long). Such audio
is aligned again with ``EDGE_PAD_S`` of near-silence added at both ends and the times shifted back.

Words outside the CMU dictionary ("unmute", "pbx": 45 Asterisk prompts) are pronounced by flite's
letter-to-sound rules (its ``t2p``), as flite itself would say them; the score check above refuses
a prompt whose guess does not fit the audio, and every guess is recorded (``Alignment.guessed``).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from avflow_cli.constants import TOKEN_SAMPLE_RATE
from avflow_cli.errors import AvflowError

ALIGN_FRAME_RATE = 100.0  # pocketsphinx's feature frames per second
EDGE_PAD_S = 0.1  # near-silence added at both ends when the phone pass fails on tightly cut audio
EDGE_PAD_LEVEL = 1e-4  # its amplitude (dither, not digital zero: the features need energy)
MIN_SCORE_RATIO = 0.93  # aligned path score / free phone-loop score below this: the text is not what is said
ALIGNER_NAME = "pocketsphinx forced alignment (en-us acoustic model, cmudict)"
LTS_PROGRAM = "t2p"  # flite's text-to-phones: letter-to-sound rules for words outside the dictionary
LTS_HINT = "install flite: `make install` or `sudo apt-get install flite`"
_FLITE_TO_CMU = {"ax": "AH", "axr": "ER"}  # flite's reduced vowels; its other phones are the CMU set's, lower-case
_GUESSED: dict[str, str] = {}  # words given to the cached aligner by letter-to-sound (word → phones)
_ALT_PRON = re.compile(r"\(\d+\)$")
_SILENCES = frozenset({"SIL", "<sil>", "<s>", "</s>", "(NULL)", "+NSN+", "+SPN+"})

Span = tuple[str, float, float]  # (name, start_s, end_s)


class AlignmentError(AvflowError):
    """The text could not be aligned to the audio (the reason is the message)."""


@dataclass(frozen=True)
class Alignment:
    """Timed words (upper-case) and phones (flite naming, silences as ``pau``) of one utterance."""

    words: list[Span]
    phones: list[Span]
    score_ratio: float  # aligned path score / free phone-loop path score (1 ≈ the text is what is said)
    guessed: dict[str, str] = field(default_factory=dict)  # words outside the dictionary → flite's phones


def spoken_text(text: str) -> str:
    """What a reader says for ``text``: [...] and (...) descriptions dropped, numbers spelled out,
    hyphens as spaces, punctuation kept (phrase breaks): "Press 1 [beep]." → "Press one."."""
    from avflow_cli.text.numbers import normalize_numbers

    spoken = re.sub(r"\[[^\]]*\]|\([^)]*\)", " ", text)  # "[beep]", "at [@]", "(1 second of silence)"
    spoken = normalize_numbers(spoken).replace("-", " ")
    spoken = re.sub(r"\s+([,.;:!?])", r"\1", " ".join(spoken.split()))
    return spoken.strip(" ,;:")


def alignment_words(text: str) -> list[str]:
    """The words pocketsphinx aligns for ``text``: :func:`spoken_text`, lower-case letters and
    apostrophes only ("Call-Forward 2" → call forward two)."""
    return [w for w in (re.sub(r"[^a-z']", "", t).strip("'") for t in spoken_text(text).lower().split()) if w]


def _spans(items: object, skip_silence: bool) -> list[Span]:
    out = []
    for it in items:  # type: ignore[attr-defined]
        name = _ALT_PRON.sub("", str(it.name))
        start = it.start / ALIGN_FRAME_RATE
        end = (it.start + it.duration) / ALIGN_FRAME_RATE
        if name in _SILENCES or name.startswith("+"):
            if skip_silence:
                continue
            name = "pau"
        out.append((name, round(start, 4), round(end, 4)))
    return out


def _decoder(kind: str) -> object:
    """The forced aligner (``"align"``) or the free phone loop (``"phones"``) on the wheel's model."""
    from avflow_cli.audio.asr import pocketsphinx_decoder

    if kind == "align":
        return pocketsphinx_decoder(align=True)
    return _phone_loop()


@lru_cache(maxsize=1)
def _phone_loop() -> object:
    from pocketsphinx import Decoder

    from avflow_cli.checkpoints import require_checkpoint

    model = require_checkpoint("pocketsphinx")
    return Decoder(hmm=str(model / "en-us"), dict=str(model / "cmudict-en-us.dict"), lm=None,
                   allphone=str(model / "en-us" / "en-us-phone.lm.bin"), samprate=TOKEN_SAMPLE_RATE, loglevel="FATAL")


def align(wav16: np.ndarray, words: list[str]) -> tuple[list[Span], list[Span], float]:
    """(timed words, timed phones, path score) of 16 kHz mono ``wav16`` saying ``words``; raises AlignmentError."""
    from avflow_cli.audio.asr import pcm16

    if not words:
        raise AlignmentError("no spoken words in the text")
    dec = _decoder("align")
    missing = [w for w in words if dec.lookup_word(w) is None]  # type: ignore[attr-defined]
    unknown = [w for w in sorted(set(missing)) if not add_pronunciation(dec, w)]
    if unknown:
        raise AlignmentError(f"not in the pronouncing dictionary: {', '.join(unknown[:5])}"
                             + ("" if shutil.which(LTS_PROGRAM) else f" (and no {LTS_PROGRAM} to guess them: {LTS_HINT})"))
    try:
        score, result = _two_passes(dec, pcm16(wav16), words)
        pad = 0.0
    except RuntimeError as err:  # tightly cut audio (module docstring): once more with edge silence
        noise = (np.random.default_rng(0).standard_normal(int(EDGE_PAD_S * TOKEN_SAMPLE_RATE)) * EDGE_PAD_LEVEL)
        padded = np.concatenate([noise, np.asarray(wav16, np.float32), noise]).astype(np.float32)
        try:
            score, result = _two_passes(dec, pcm16(padded), words)
        except RuntimeError:
            raise AlignmentError(f"the aligner failed ({err})") from err
        pad = EDGE_PAD_S
    if result is None:
        raise AlignmentError("the aligner returned no phone alignment")
    duration = len(wav16) / TOKEN_SAMPLE_RATE
    timed = _unpad([(w.upper(), s, e) for w, s, e in _spans(result, skip_silence=True)], pad, duration)
    if [w for w, _, _ in timed] != [w.upper() for w in words]:
        raise AlignmentError("text does not match the audio (the aligned words differ from it)")
    phones = _unpad([(p.lower(), s, e) for p, s, e in _spans(result.phones(), skip_silence=False)], pad, duration)
    return timed, phones, score


def letter_to_sound(word: str) -> str | None:
    """flite's pronunciation of ``word`` by its letter-to-sound rules, in pocketsphinx's phone set
    ("unmute" → "AH N M Y UW T"); None without flite's ``t2p`` or when it gives no phones."""
    exe = shutil.which(LTS_PROGRAM)
    if exe is None or not re.fullmatch(r"[a-z']+", word):
        return None
    try:
        out = subprocess.run([exe, word], capture_output=True, text=True, timeout=10, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    phones = [_FLITE_TO_CMU.get(p, p.upper()) for p in (re.sub(r"\d", "", t) for t in out.split()) if p and p != "pau"]
    return " ".join(phones) or None


def add_pronunciation(dec: object, word: str) -> bool:
    """Give the aligner a word outside the CMU dictionary, pronounced by :func:`letter_to_sound`.

    A guess that is wrong for the audio makes the alignment score low, so :func:`check_transcript`
    still refuses the prompt; the guessed words are listed in :func:`guessed_words`."""
    phones = letter_to_sound(word)
    if phones is None:
        return False
    try:
        dec.add_word(word, phones, True)  # type: ignore[attr-defined]
    except (RuntimeError, ValueError):  # a phone the acoustic model lacks
        return False
    if dec.lookup_word(word) is None:  # type: ignore[attr-defined]
        return False
    _GUESSED[word] = phones
    return True


def guessed_words(words: list[str]) -> dict[str, str]:
    """Those of ``words`` the aligner pronounces by flite's rules (word → phones)."""
    return {w: _GUESSED[w] for w in words if w in _GUESSED}


def _two_passes(dec: object, pcm: bytes, words: list[str]) -> tuple[float, object]:
    """(path score of the words pass, the phone pass's alignment); RuntimeError from pocketsphinx passes through."""
    from avflow_cli.audio.asr import decode_utterance

    dec.set_align_text(" ".join(words))  # type: ignore[attr-defined]
    decode_utterance(dec, pcm)
    hyp = dec.hyp()  # type: ignore[attr-defined]
    if hyp is None:
        raise AlignmentError("text does not match the audio (the aligner found no path through it)")
    score = float(hyp.score)
    dec.set_alignment()  # type: ignore[attr-defined]
    decode_utterance(dec, pcm)
    return score, dec.get_alignment()  # type: ignore[attr-defined]


def _unpad(spans: list[Span], pad: float, duration: float) -> list[Span]:
    """Spans of padded audio back on the original's clock: shifted by ``pad``, clipped to
    [0, duration]; a span left empty (silence inside the padding) is dropped."""
    if not pad:
        return spans
    out = []
    for name, start, end in spans:
        start, end = max(0.0, round(start - pad, 4)), min(duration, round(end - pad, 4))
        if end > start:
            out.append((name, start, end))
    return out


def phone_loop_score(wav16: np.ndarray) -> float:
    """Normalised path score of the best free phone sequence (the reference for :func:`check_transcript`)."""
    from avflow_cli.audio.asr import decode_utterance, pcm16

    dec = _decoder("phones")
    decode_utterance(dec, pcm16(wav16))
    hyp = dec.hyp()  # type: ignore[attr-defined]
    return float(hyp.score) if hyp is not None else 0.0


def check_transcript(wav16: np.ndarray, text: str, min_score_ratio: float = MIN_SCORE_RATIO) -> Alignment:
    """Align ``text`` to 16 kHz mono speech and check that the audio says it; raises AlignmentError."""
    words = alignment_words(text)
    if not words:
        raise AlignmentError("no spoken words in the text (empty, or only a description in brackets)")
    timed, phones, score = align(wav16, words)
    ratio = score / max(phone_loop_score(wav16), 1e-12)
    if ratio < min_score_ratio:
        raise AlignmentError(f"text does not match the audio (alignment scores {ratio:.3f} of the free phone loop, "
                             f"below {min_score_ratio})")
    return Alignment(timed, phones, round(ratio, 4), guessed_words(words))
