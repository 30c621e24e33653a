"""CTC-shaped character logits at 50 Hz from known word/phone timing (the offline token source).

The model's input tokens are Wav2Vec2 ASR character logits (DESIGN.md §1). When the timing
of the speech is known exactly (the demo corpus: flite reports every phone's end time) and
the ASR weights are not available, we build what a good CTC recogniser would output: each
word's characters spread over the time its phones occupy, one peaky frame per character,
the blank everywhere else, and the word boundary "|" right after each word. The result is
a log-posterior matrix in ``TOKEN_LABELS`` order (softmax of it gives the posteriors), and
greedy CTC decoding of it gives back the transcript.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from avflow_cli.constants import TOKEN_BLANK, TOKEN_DIM, TOKEN_LABELS, TOKEN_RATE, TOKEN_WORD_BOUNDARY
from avflow_cli.errors import AvflowError, InputFileError

PAUSE_PHONES = frozenset({"pau", "sil", "sp", "spn", "h#", ""})
PEAK_PROB = 0.7  # posterior of the emitted label on its frame; neighbours get SPREAD_PROB each
SPREAD_PROB = 0.15
FLOOR_PROB = 0.01  # shared by all labels everywhere, so no logit is -inf
_LABEL_INDEX = {c: i for i, c in enumerate(TOKEN_LABELS)}
_PHRASE_BREAK = re.compile(r"[,.;:!?]+")

WordSpan = tuple[str, float, float]  # (WORD in TOKEN_LABELS characters, start_s, end_s)


def num_token_frames(duration_s: float) -> int:
    """Token frames covering ``duration_s`` seconds at TOKEN_RATE."""
    return max(1, int(np.floor(duration_s * TOKEN_RATE + 1e-9)))


def normalize_word(word: str) -> str:
    """Upper-case and keep only characters the ASR alphabet has (letters and apostrophe)."""
    return "".join(c for c in word.upper() if c in _LABEL_INDEX and c not in "-|")


def _phrases(text: str) -> list[list[str]]:
    """Words of ``text`` grouped into phrases at punctuation (where flite inserts pauses)."""
    out = []
    for chunk in _PHRASE_BREAK.split(text):
        words = [w for w in (normalize_word(w) for w in chunk.split()) if w]
        if words:
            out.append(words)
    return out


def _phone_groups(phones: Sequence[Sequence[Any]]) -> list[list[tuple[float, float]]]:
    """Non-pause phone intervals grouped into runs separated by pauses."""
    groups: list[list[tuple[float, float]]] = [[]]
    for name, start, end in phones:
        if str(name).lower() in PAUSE_PHONES:
            if groups[-1]:
                groups.append([])
        else:
            groups[-1].append((float(start), float(end)))
    return [g for g in groups if g]


@lru_cache(maxsize=1)
def _dictionary_phone_counts() -> dict[str, int]:
    """Phones per word in the CMU pronouncing dictionary that ships inside pocketsphinx's wheel.

    flite's lexicon is derived from the same dictionary, so the counts split a run of flite's
    phones into its words exactly whenever every word is listed. Empty when the file is absent.
    """
    try:
        import pocketsphinx

        path = Path(pocketsphinx.get_model_path()) / "en-us" / "cmudict-en-us.dict"
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except (ImportError, OSError):
        return {}
    counts: dict[str, int] = {}
    for line in lines:
        word, _, phones = line.partition(" ")
        if "(" not in word and phones:  # first pronunciation only
            counts.setdefault(normalize_word(word), len(phones.split()))
    return counts


def _spread(words: list[str], phones: list[tuple[float, float]]) -> list[WordSpan]:
    """Give consecutive phones to words: by dictionary phone counts when they add up exactly,
    otherwise in proportion to the words' letter counts."""
    counts = [_dictionary_phone_counts().get(w, 0) for w in words]
    if all(counts) and sum(counts) == len(phones):
        bounds = np.concatenate([[0], np.cumsum(counts)])
        return [(w, phones[a][0], phones[b - 1][1]) for w, a, b in zip(words, bounds[:-1], bounds[1:])]
    letters = np.array([len(w) for w in words], dtype=np.float64)
    if len(phones) >= len(words):
        bounds = np.round(np.concatenate([[0], np.cumsum(letters)]) / letters.sum() * len(phones)).astype(int)
        bounds = np.maximum.accumulate(np.maximum(bounds, np.arange(len(bounds))))  # ≥ 1 phone each
        bounds = np.minimum(bounds, len(phones) - (len(bounds) - 1 - np.arange(len(bounds))))
        return [(w, phones[a][0], phones[b - 1][1]) for w, a, b in zip(words, bounds[:-1], bounds[1:])]
    start, end = phones[0][0], phones[-1][1]  # fewer phones than words: split time by letters
    edges = start + (end - start) * np.concatenate([[0], np.cumsum(letters)]) / letters.sum()
    return [(w, float(a), float(b)) for w, a, b in zip(words, edges[:-1], edges[1:])]


def word_spans(turn: dict[str, Any]) -> list[WordSpan]:
    """Timed words of one transcript turn.

    Uses ``turn["words"]`` ([word, start, end] triples) when present; otherwise spreads the
    words of ``turn["text"]`` over the non-pause phones of ``turn["phones"]``, phrase by phrase
    when the pauses line up with the punctuation; otherwise over the turn's start/end.
    """
    if turn.get("words"):
        spans = [(normalize_word(str(w)), float(s), float(e)) for w, s, e in turn["words"]]
        return [s for s in spans if s[0]]
    phrases = _phrases(str(turn.get("text", "")))
    words = [w for p in phrases for w in p]
    if not words:
        return []
    groups = _phone_groups(turn.get("phones") or [])
    if not groups:
        return _spread(words, [(float(turn["start"]), float(turn["end"]))])
    if len(groups) == len(phrases):
        return [span for p, g in zip(phrases, groups) for span in _spread(p, g)]
    return _spread(words, [ph for g in groups for ph in g])


def ctc_logits(spans: Iterable[WordSpan], num_frames: int) -> np.ndarray:
    """Log-posteriors (num_frames, 29) at TOKEN_RATE with one peak per character.

    Character j of a word spanning frames [a, b) peaks at a + j·(b − a)/len(word); a repeated
    letter is pushed one frame further so a blank separates the two (CTC would merge them).
    "|" follows each word. Labels that would land past the end are dropped.
    """
    labels = np.full(num_frames, TOKEN_BLANK, dtype=np.int64)  # (N,)
    last = -2
    for word, start, end in sorted(spans, key=lambda s: s[1]):
        a = int(np.floor(start * TOKEN_RATE))
        b = max(a + 1, int(np.ceil(end * TOKEN_RATE)))
        pos = max(a, last + 1)
        prev_char = None
        for j, char in enumerate(word):
            pos = max(pos, a + int(np.floor(j * (b - a) / len(word))))
            if char == prev_char:
                pos = max(pos, last + 2)
            if pos >= num_frames:
                break
            labels[pos] = _LABEL_INDEX[char]
            last, prev_char, pos = pos, char, pos + 1
        if last + 1 < num_frames and labels[last] != TOKEN_WORD_BOUNDARY:
            last += 1
            labels[last] = TOKEN_WORD_BOUNDARY
    onehot = np.eye(TOKEN_DIM)[labels]  # (N, 29)
    post = PEAK_PROB * onehot
    post[1:] += SPREAD_PROB * onehot[:-1]
    post[:-1] += SPREAD_PROB * onehot[1:]
    post[0] += SPREAD_PROB * onehot[0]  # the ends keep their mass
    post[-1] += SPREAD_PROB * onehot[-1]
    post += FLOOR_PROB / TOKEN_DIM
    post /= post.sum(axis=1, keepdims=True)
    return np.log(post).astype(np.float32)


def greedy_decode(logits: np.ndarray) -> str:
    """Greedy CTC decoding: argmax, merge repeats, drop blanks, "|" → space."""
    ids = np.asarray(logits).argmax(axis=-1)  # (N,)
    keep = np.concatenate([[True], ids[1:] != ids[:-1]]) & (ids != TOKEN_BLANK)
    text = "".join(TOKEN_LABELS[i] for i in ids[keep]).replace("|", " ")
    return " ".join(text.split())


def tokens_from_transcript(turns: Sequence[dict[str, Any]], duration_s: float, speaker: str | None) -> np.ndarray:
    """CTC-shaped logits (N_tok, 29) at 50 Hz for ``speaker``'s turns (None: every turn)."""
    spans = [s for t in turns if speaker is None or t.get("speaker") == speaker for s in word_spans(t)]
    return ctc_logits(spans, num_token_frames(duration_s))


def has_timing(transcript: dict[str, Any], speaker: str | None = None) -> bool:
    """Whether the transcript's turns (of ``speaker``) carry phone or word timings."""
    turns = [t for t in transcript.get("turns", []) if speaker is None or t.get("speaker") == speaker]
    return bool(turns) and all(t.get("phones") or t.get("words") for t in turns)


# --- LJSpeech-layout folders (text-to-tokens training data) -------------------------------------
def read_ljspeech_metadata(folder: str | Path) -> list[tuple[str, str]]:
    """(id, text) pairs of ``metadata.csv`` (``id|text|normalised text``; normalised preferred)."""
    path = Path(folder) / "metadata.csv"
    if not path.is_file():
        raise InputFileError(path, "file not found (an LJSpeech-layout folder needs metadata.csv)")
    rows = []
    with path.open(newline="", encoding="utf-8") as f:
        for n, row in enumerate(csv.reader(f, delimiter="|", quoting=csv.QUOTE_NONE), 1):
            if not row or not row[0].strip():
                continue
            if len(row) < 2:
                raise InputFileError(path, f"line {n}: expected id|text[|normalised text]")
            rows.append((row[0].strip(), (row[2] if len(row) > 2 and row[2].strip() else row[1]).strip()))
    if not rows:
        raise InputFileError(path, "no entries")
    return rows


def alignment_turn(path: str | Path, text: str) -> dict[str, Any]:
    """Read ``alignments/ID.json`` as one transcript turn.

    Accepted: ``{"words": [[w, s, e], ...]}``, ``{"phones": [[p, s, e], ...]}`` (text from
    metadata.csv) or a session-style ``{"turns": [...]}`` (all turns joined).
    """
    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, "file not found (needed for --source alignment)")
    try:
        obj = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise InputFileError(path, f"corrupt JSON ({err})") from err
    if "turns" in obj:
        turns = obj["turns"]
        return {
            "text": " ".join(t.get("text", "") for t in turns),
            "words": [w for t in turns for w in word_spans(t)],
        }
    if not (obj.get("words") or obj.get("phones")):
        raise InputFileError(path, "no 'words' or 'phones' timing")
    return {"text": obj.get("text", text), "words": obj.get("words"), "phones": obj.get("phones")}


def ljspeech_tokens(
    folder: str | Path,
    source: str = "auto",
    checkpoint: str | Path | None = None,
    device: str = "cpu",
    progress_cb: Any = None,
) -> tuple[int, str]:
    """Write ``tokens/ID.npy`` (N_tok, 29) for every entry of an LJSpeech-layout folder.

    Returns (files written, source used). Entries whose token file exists are skipped.
    """
    from avflow_cli.audio.io import read_audio
    from avflow_cli.fsutil import atomic_path

    folder = Path(folder)
    rows = read_ljspeech_metadata(folder)
    extractor = None
    if source in ("auto", "wav2vec2"):
        try:
            from avflow_cli.audio.asr_tokens import Wav2Vec2Tokens

            extractor = Wav2Vec2Tokens(checkpoint=checkpoint, device=device)
            source = "wav2vec2"
        except AvflowError:
            if source == "wav2vec2" or not (folder / "alignments").is_dir():
                raise
            source = "alignment"
    if source not in ("alignment", "wav2vec2"):
        raise AvflowError(f"unknown token source {source!r} (auto, wav2vec2 or alignment)")
    from avflow_cli.data.token_source import record_ljspeech_source

    record_ljspeech_source(folder, source, getattr(extractor, "name", None))  # refuses mixing kinds
    written = 0
    for item_id, text in rows:
        out = folder / "tokens" / f"{item_id}.npy"
        if out.is_file():
            if progress_cb:
                progress_cb()
            continue
        wav_path = folder / "wavs" / f"{item_id}.wav"
        audio, sr = read_audio(wav_path)
        mono = audio.mean(axis=0)  # (N,)
        if extractor is not None:
            logits = np.asarray(extractor.logits(mono, sr), dtype=np.float32)
        else:
            turn = alignment_turn(folder / "alignments" / f"{item_id}.json", text)
            logits = ctc_logits(word_spans(turn), num_token_frames(len(mono) / sr))
        with atomic_path(out) as tmp:
            np.save(tmp, logits)
        written += 1
        if progress_cb:
            progress_cb()
    return written, source
