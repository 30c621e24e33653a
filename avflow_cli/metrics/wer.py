"""Word error rate of generated speech (AV-Flow §4.1, Tables 1-2 "WER").

WER = (S + D + I) / N over the test set: an ASR transcript of the generated speech against the
input text, errors and reference words summed over clips before dividing (corpus WER). Both
sides are normalised the standard way: jiwer's ``wer_standardize`` (lower case, common English
contractions expanded, Kaldi non-words removed, whitespace collapsed) plus punctuation removal.

ASR (DESIGN.md §3): ``avflow_cli.audio.asr.transcribe`` — Wav2Vec2 greedy CTC when its weights
are present, otherwise pocketsphinx; if that module is missing, pocketsphinx is called
directly here. The backend that ran is returned with every transcript, and ``eval`` writes it
into ``metrics.json``. A WER is only comparable next to the same ASR on the ground-truth audio,
which ``eval`` always reports as well.
"""

from __future__ import annotations

from dataclasses import dataclass

import jiwer
import numpy as np

from avflow_cli.errors import AvflowError

ASR_SAMPLE_RATE = 16000

NORMALIZE = jiwer.Compose(
    [
        jiwer.ToLowerCase(),
        jiwer.ExpandCommonEnglishContractions(),
        jiwer.RemoveKaldiNonWords(),
        jiwer.RemovePunctuation(),
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


def _pocketsphinx_transcribe(wav: np.ndarray, sr: int) -> str:
    from pocketsphinx import Decoder

    from avflow_cli.audio.io import resample

    x = resample(np.asarray(wav, dtype=np.float32), int(sr), ASR_SAMPLE_RATE).numpy()  # (N,)
    pcm = (np.clip(x, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()
    decoder = Decoder(samprate=ASR_SAMPLE_RATE, loglevel="FATAL")
    decoder.start_utt()
    decoder.process_raw(pcm, full_utt=True)
    decoder.end_utt()
    hyp = decoder.hyp()
    return hyp.hypstr if hyp is not None else ""


def transcribe(wav: np.ndarray, sr: int, backend: str = "auto") -> tuple[str, str]:
    """ASR transcript of mono audio and the name of the backend that produced it."""
    wav = np.asarray(wav, dtype=np.float32).reshape(-1)
    try:
        from avflow_cli.audio import asr
    except ImportError:
        asr = None
    if asr is not None and hasattr(asr, "transcribe"):
        return asr.transcribe(wav, sr, backend=backend)
    if backend not in ("auto", "pocketsphinx"):
        raise AvflowError(f"ASR backend {backend!r} needs avflow_cli.audio.asr, which is not installed")
    return _pocketsphinx_transcribe(wav, sr), "pocketsphinx"
