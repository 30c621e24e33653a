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

Long clips are transcribed segment by segment (:func:`transcribe_segments`): the speech is cut
at pauses of at least 0.3 s found by an energy detector (10 ms frames at 16 kHz, active when
louder than max(peak − 35 dB, 10th percentile + 10 dB), segments padded by 0.1 s, bursts
under 0.15 s dropped), each segment is transcribed and the words are joined. Pocketsphinx
decodes one 30 s multi-sentence utterance far worse than its sentences (measured on a demo
clip through the HiFi-GAN vocoder: WER 0.91 whole vs 0.46 segmented).
"""

from __future__ import annotations

from dataclasses import dataclass

import jiwer
import numpy as np

from avflow_cli.errors import AvflowError

ASR_SAMPLE_RATE = 16000
VAD_HOP = 160  # 10 ms at 16 kHz
VAD_PEAK_DB = 35.0  # active: within this many dB of the loudest frame ...
VAD_FLOOR_DB = 10.0  # ... and this far above the 10th-percentile (noise) level
VAD_MIN_PAUSE_S = 0.3  # shorter pauses do not split
VAD_PAD_S = 0.1
VAD_MIN_SEGMENT_S = 0.15

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


def speech_segments(wav: np.ndarray, sr: int) -> list[tuple[int, int]]:
    """Sample ranges [a, b) of speech in mono ``wav``, split at pauses (see module docstring)."""
    x = np.asarray(wav, dtype=np.float64).reshape(-1)
    hop = max(1, int(round(sr * VAD_HOP / ASR_SAMPLE_RATE)))
    n = len(x) // hop
    if n == 0:
        return []
    energy = 10.0 * np.log10(np.square(x[: n * hop].reshape(n, hop)).mean(axis=1) + 1e-10)  # (n,) dB
    active = energy > max(energy.max() - VAD_PEAK_DB, np.percentile(energy, 10) + VAD_FLOOR_DB)
    idx = np.flatnonzero(active)
    if idx.size == 0:
        return []
    fps = sr / hop
    breaks = np.flatnonzero(np.diff(idx) > VAD_MIN_PAUSE_S * fps)  # gaps that split
    starts = np.concatenate([[idx[0]], idx[breaks + 1]])
    ends = np.concatenate([idx[breaks], [idx[-1]]]) + 1
    keep = (ends - starts) >= VAD_MIN_SEGMENT_S * fps
    pad = int(round(VAD_PAD_S * fps))
    return [(int(max(0, a - pad) * hop), int(min(n, b + pad) * hop)) for a, b in zip(starts[keep], ends[keep])]


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
