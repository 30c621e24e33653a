"""Word error rate of generated speech (AV-Flow §4.1, Tables 1-2 "WER").

WER = (S + D + I) / N over the test set: an ASR transcript of the generated speech against the
input text, errors and reference words summed over clips before dividing (corpus WER). Both
sides are normalised the standard way: jiwer's ``wer_standardize`` (lower case, common English
contractions expanded, Kaldi non-words removed, whitespace collapsed) plus punctuation removal,
and the titles a cased recogniser abbreviates (Whisper writes "Mr." where a reference or
pocketsphinx says "mister") spelled out. Numbers are not: Whisper's digits count as errors.

ASR (docs/ARCHITECTURE.md §3): :func:`avflow_cli.audio.asr.transcribe` — Wav2Vec2 greedy CTC when its
weights are present, otherwise pocketsphinx; ``whisper`` / ``whisper:DIR`` is the second,
independent recogniser (faster-whisper). The backend that ran is returned with every
transcript, and ``eval`` writes it into ``metrics.json``. A WER is only comparable next to the same
ASR on the ground-truth audio, which ``eval`` always reports as well.

Long clips are transcribed segment by segment (:func:`transcribe_segments`): the speech is cut
at pauses of at least 0.3 s by :func:`avflow_cli.audio.vad.speech_segments` (an energy
detector), each segment is transcribed and the words are joined. Pocketsphinx decodes one 30 s
multi-sentence utterance far worse than its sentences (measured on a demo clip through the
HiFi-GAN vocoder: WER 0.91 whole vs 0.46 segmented).
"""

from __future__ import annotations

from dataclasses import dataclass

import jiwer
import numpy as np

from avflow_cli.audio.asr import transcribe
from avflow_cli.audio.vad import speech_segments
from avflow_cli.errors import AvflowError

__all__ = ["WordErrors", "normalize_text", "word_errors", "wer", "transcribe", "transcribe_segments"]

NORMALIZE = jiwer.Compose(
    [
        jiwer.ToLowerCase(),
        jiwer.ExpandCommonEnglishContractions(),
        jiwer.RemoveKaldiNonWords(),
        jiwer.RemovePunctuation(),
        jiwer.SubstituteWords({"mr": "mister", "mrs": "missus", "dr": "doctor"}),
        jiwer.RemoveWhiteSpace(replace_by_space=True),
        jiwer.RemoveMultipleSpaces(),
        jiwer.Strip(),
        jiwer.ReduceToListOfListOfWords(),
    ]
)


@dataclass
class WordErrors:
    """Edit counts against ``words`` reference words; add across clips, then take ``wer``."""

    errors: int = 0
    words: int = 0

    def __add__(self, other: "WordErrors") -> "WordErrors":
        return WordErrors(self.errors + other.errors, self.words + other.words)

    @property
    def wer(self) -> float:
        return float("nan") if self.words == 0 else self.errors / self.words


def normalize_text(text: str) -> str:
    """The normalised word string both sides are compared on."""
    words = NORMALIZE(text)  # list of lists of words
    return " ".join(w for sentence in words for w in sentence)


def word_errors(reference: str, hypothesis: str) -> WordErrors:
    """Substitutions + deletions + insertions of ``hypothesis`` against ``reference``."""
    ref = normalize_text(reference)
    if not ref:
        raise AvflowError("WER needs a non-empty reference text")
    hyp = normalize_text(hypothesis)
    if not hyp:  # everything deleted
        return WordErrors(len(ref.split()), len(ref.split()))
    out = jiwer.process_words(ref, hyp)
    return WordErrors(out.substitutions + out.deletions + out.insertions, out.hits + out.substitutions + out.deletions)


def wer(reference: str, hypothesis: str) -> float:
    """WER of one transcript after standard normalisation."""
    return word_errors(reference, hypothesis).wer


def transcribe_segments(wav: np.ndarray, sr: int, backend: str = "auto") -> tuple[str, str]:
    """Transcribe ``wav`` pause-segment by pause-segment; (joined text, backend name)."""
    wav = np.asarray(wav, dtype=np.float32).reshape(-1)
    segments = speech_segments(wav, sr)
    if len(segments) <= 1:
        return transcribe(wav, sr, backend)
    texts, name = [], backend
    for a, b in segments:
        text, name = transcribe(wav[a:b], sr, backend)
        texts.append(text.strip())
    return " ".join(t for t in texts if t), name
