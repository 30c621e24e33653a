"""Incremental participant speech recognition: VAD-gated pocketsphinx utterances, audio fed once.

The offline substitute (:func:`avflow_cli.participant.tokens.pocketsphinx_words`) decodes a whole
recording; re-running it on a growing window every push (the old listening loop) cost 4× real time.
Here every 16 kHz sample reaches the decoder at most once: webrtcvad (30 ms frames, the same flags
as offline) opens an utterance at the first voiced frame (with ``PREROLL_S`` of audio before it),
``process_raw`` takes the audio as it arrives, and ``HANGOVER_S`` of unvoiced audio closes it
(``end_utt``: the final words). While an utterance is open, the partial hypothesis (``seg()``) is
read every ``PARTIAL_HOP_S`` of audio, so words are known about ``lag_s`` after they are spoken.

The decoder runs pocketsphinx's single forward pass with bounded search (no flat-lexicon second pass,
no lattice best path, at most ``MAX_HMM_PER_FRAME`` active HMMs): 0.2× real time on one core of the
2-core CI machine instead of 0.5× (measured on the LibriVox clips of the pocketsphinx sdist, same
words up to one function word; docs/live.md). Timing comes from the recognition segmentation (the
offline path's second forced-alignment pass would decode everything twice).

Letters: N samples at 16 kHz, M VAD frames of 30 ms.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from avflow_cli.constants import TOKEN_SAMPLE_RATE

VAD_FRAME = TOKEN_SAMPLE_RATE * 30 // 1000  # samples per webrtcvad frame (30 ms, as offline)
PREROLL_S = 0.3  # audio before the first voiced frame that opens an utterance (word onsets are quiet)
HANGOVER_S = 0.5  # unvoiced audio that closes an utterance
PARTIAL_HOP_S = 0.2  # how often the open utterance's partial hypothesis is read
LAG_S = 0.3  # words closer than this to the newest audio may still change
MAX_HMM_PER_FRAME = 3000
Word = tuple[str, float, float]  # (WORD, start_s, end_s) on the participant audio's timeline


@lru_cache(maxsize=1)
def live_decoder() -> tuple[Any, str]:
    """pocketsphinx on the wheel's US-English model, configured for one fast forward pass (module doc),
    and its initial cepstral mean (loaded once per process: 0.8 s; each recogniser resets the mean,
    which live decoding adapts as it goes, so sessions do not depend on each other)."""
    from pocketsphinx import Decoder

    from avflow_cli.checkpoints import require_checkpoint

    model = require_checkpoint("pocketsphinx")
    decoder = Decoder(hmm=str(model / "en-us"), dict=str(model / "cmudict-en-us.dict"), lm=str(model / "en-us.lm.bin"),
                   samprate=TOKEN_SAMPLE_RATE, loglevel="FATAL", fwdflat=False, bestpath=False,
                   maxhmmpf=MAX_HMM_PER_FRAME, maxwpf=5, pl_window=10)
    return decoder, decoder.get_cmn()


@dataclass
class HeardUtterance:
    """One VAD-gated utterance: its audio span and its words (partial until ``final``)."""

    start: float  # seconds of its first sample
    end: float  # seconds after its last sample fed so far
    words: list[Word] = field(default_factory=list)
    final: bool = False


class StreamingRecognizer:
    """16 kHz audio in (any chunking), timed words out; see the module docstring."""

    def __init__(self, *, decoder: Any = None, preroll_s: float = PREROLL_S, hangover_s: float = HANGOVER_S,
                 partial_hop_s: float = PARTIAL_HOP_S, lag_s: float = LAG_S) -> None:
        if decoder is None:
            decoder, cmn = live_decoder()
            decoder.set_cmn(cmn)
        self.decoder = decoder
        self.preroll = int(round(preroll_s / 0.03))  # VAD frames
        self.hangover = max(1, int(round(hangover_s / 0.03)))
        self.partial_hop = int(round(partial_hop_s * TOKEN_SAMPLE_RATE))
        self.lag_s = float(lag_s)
        self.pending = np.zeros(0, np.float32)  # samples not yet a whole VAD frame
        self.frames_seen = 0  # VAD frames classified
        self.recent: list[np.ndarray] = []  # the last `preroll` frames while no utterance is open
        self.current: HeardUtterance | None = None
        self.unvoiced_run = 0
        self.voiced: list[bool] = []  # flags of the open utterance's frames
        self.since_partial = 0
        self.partial_at = 0.0  # the open utterance's words are from its audio up to here
        self.utterances: list[HeardUtterance] = []  # closed ones, oldest first (trimmed by `forget`)
        self.final_words: list[str] = []  # every final word, in order (kept by `forget`)
        self.samples_decoded = 0  # samples handed to the decoder: each at most once
        self.decoder_calls = 0  # process_raw calls

    # --- input ------------------------------------------------------------------------------
    @property
    def heard_s(self) -> float:
        """Seconds of audio classified so far (the recogniser's clock)."""
        return self.frames_seen * VAD_FRAME / TOKEN_SAMPLE_RATE

    @property
    def settled_s(self) -> float:
        """Words before this time will not change any more (outside an utterance: everything heard)."""
        return self.heard_s if self.current is None else max(self.current.start, self.partial_at - self.lag_s)

    def push(self, x16: np.ndarray) -> None:
        """Classify and decode new 16 kHz float audio (N,)."""
        from avflow_cli.participant.tokens import voiced_frames

        x = np.concatenate([self.pending, np.asarray(x16, np.float32).reshape(-1)])
        m = len(x) // VAD_FRAME
        self.pending = x[m * VAD_FRAME :]
        if m == 0:
            return
        frames = x[: m * VAD_FRAME].reshape(m, VAD_FRAME)  # (M, 480)
        flags = voiced_frames(x[: m * VAD_FRAME])  # (M,)
        feed: list[np.ndarray] = []
        for frame, voiced in zip(frames, flags):
            self.frames_seen += 1
            if self.current is None:
                if voiced:
                    self._open(self.recent + [frame])
                    self.recent = []
                else:
                    self.recent = (self.recent + [frame])[-self.preroll :] if self.preroll else []
                continue
            feed.append(frame)
            self.voiced.append(bool(voiced))
            self.unvoiced_run = 0 if voiced else self.unvoiced_run + 1
            if self.unvoiced_run >= self.hangover:
                self._feed(feed)
                feed = []
                self._close()
        if feed:
            self._feed(feed)

    def finish(self) -> None:
        """End of the audio: close the open utterance."""
        if self.current is not None:
            self._close()

    # --- the decoder --------------------------------------------------------------------------
    def _open(self, frames: list[np.ndarray]) -> None:
        start = (self.frames_seen - len(frames)) * VAD_FRAME / TOKEN_SAMPLE_RATE
        self.current = HeardUtterance(start=start, end=start)
        self.voiced = [False] * (len(frames) - 1)
        self.unvoiced_run = 0
        self.since_partial = 0
        self.partial_at = start
        self.decoder.start_utt()
        self._feed(frames[:-1])
        self.voiced.append(True)
        self._feed(frames[-1:])

    def _feed(self, frames: list[np.ndarray]) -> None:
        from avflow_cli.audio.asr import pcm16

        if not frames or self.current is None:
            return
        audio = np.concatenate(frames)
        self.decoder.process_raw(pcm16(audio), False, False)
        self.decoder_calls += 1
        self.samples_decoded += len(audio)
        self.current.end += len(audio) / TOKEN_SAMPLE_RATE
        self.since_partial += len(audio)
        if self.since_partial >= self.partial_hop:
            self.since_partial = 0
            self.current.words = self._words()
            self.partial_at = self.current.end

    def _close(self) -> None:
        assert self.current is not None
        self.decoder.end_utt()
        self.current.words = self._words()
        self.current.final = True
        self.final_words += [w for w, _, _ in self.current.words]
        self.utterances.append(self.current)
        self.current = None
        self.voiced = []
        self.unvoiced_run = 0

    def _words(self) -> list[Word]:
        """The decoder's current segmentation on the session timeline; words over mostly unvoiced
        frames dropped (the language model fills pauses with words, as offline)."""
        from avflow_cli.participant.tokens import MIN_VOICED_SHARE, _segments

        assert self.current is not None
        flags = np.asarray(self.voiced, bool)
        out = []
        for word, s, e in _segments(self.decoder):
            a, b = int(s / 0.03), max(int(s / 0.03) + 1, int(np.ceil(e / 0.03)))
            share = float(flags[a:b].mean()) if flags[a:b].size else 0.0
            if share >= MIN_VOICED_SHARE:
                out.append((word.upper(), self.current.start + s, self.current.start + e))
        return out

    # --- output -------------------------------------------------------------------------------
    def all_utterances(self) -> list[HeardUtterance]:
        """Closed utterances and the open one (partial words), oldest first."""
        return self.utterances + ([self.current] if self.current is not None else [])

    def transcript(self) -> str:
        """Every final word so far, lower-case, space-separated."""
        return " ".join(self.final_words).lower()

    def forget(self, before_s: float) -> None:
        """Drop closed utterances that ended before ``before_s`` (bounded memory on long sessions)."""
        self.utterances = [u for u in self.utterances if u.end >= before_s]
