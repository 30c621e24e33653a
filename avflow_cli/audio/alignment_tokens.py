"""CTC-shaped character logits at 50 Hz from known word/phone timing (the offline token source).

The model's input tokens are Wav2Vec2 ASR character logits (docs/ARCHITECTURE.md §1). When the timing
of the speech is known exactly (the demo corpus: flite reports every phone's end time) and
the ASR weights are not available, we build what a good CTC recogniser would output: each
word's characters spread over the time its phones occupy, one peaky frame per character,
the blank everywhere else, and the word boundary "|" right after each word. The result is
a log-posterior matrix in ``TOKEN_LABELS`` order (softmax of it gives the posteriors), and
greedy CTC decoding of it gives back the transcript.

A real recogniser's posteriors also say what is *heard* on every frame, not only which letter
is written: its non-argmax mass falls on letters that sound like the current phone ("c" in
"cat" puts mass on K). Letters alone leave the sound ambiguous (English spelling), and a small
model cannot learn spelling-to-sound from half an hour of speech. So every frame of a phone
also gets ``SOUND_PROB`` of mass on that phone's sound letters (``SOUND_LETTERS``); the blank
or the emitted letter keeps the argmax, so greedy decoding is unchanged. Measured with a plain
conv regressor tokens → mel on 26 min of flite speech (probe WER, pocketsphinx): letters only
0.27, letters spread over their phones 0.35, letters + sounds 0.12, phones 0.07 (docs/quality.md).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from avflow_cli.constants import TOKEN_BLANK, TOKEN_DIM, TOKEN_LABELS, TOKEN_RATE, TOKEN_WORD_BOUNDARY
from avflow_cli.errors import InputFileError
from avflow_cli.jsonfile import read_json

PAUSE_PHONES = frozenset({"pau", "sil", "sp", "spn", "h#", ""})
PEAK_PROB = 0.7  # posterior of the emitted label on its frame; neighbours get SPREAD_PROB each
SPREAD_PROB = 0.15
FLOOR_PROB = 0.01  # shared by all labels everywhere, so no logit is -inf
SOUND_PROB = 0.12  # mass on the current phone's sound letters, every frame of the phone
ALIGNMENT_EXTRACTOR = "alignment-sounds-v2"  # recorded with the tokens: v1 had no sound mass
# The letters a phone (flite / CMU set) sounds like, most typical first: weights 1, 1/2, 1/4 …,
# so that no two phones share a profile (t "T" vs d "D", ow "O" vs oy "OY").
SOUND_LETTERS: dict[str, str] = {
    "p": "P", "b": "B", "m": "M", "f": "F", "v": "V", "th": "TH", "dh": "THD", "s": "S", "z": "Z",
    "sh": "SH", "zh": "ZH", "ch": "CH", "jh": "J", "k": "K", "g": "G", "t": "T", "d": "D", "n": "N",
    "ng": "NG", "l": "L", "r": "R", "w": "W", "y": "Y", "hh": "H", "el": "LE", "em": "ME", "en": "NE",
    "aa": "AO", "ae": "A", "ah": "U", "ao": "OA", "aw": "OW", "ax": "UA", "ay": "AY", "eh": "E",
    "er": "ER", "ey": "EY", "ih": "I", "iy": "EI", "ow": "O", "oy": "OY", "uh": "OU", "uw": "UO",
}
PhoneSpan = tuple[str, float, float]  # (phone name, start_s, end_s)
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
def _pronunciations() -> dict[str, tuple[str, ...]]:
    """First pronunciation of every word in the CMU pronouncing dictionary that ships inside
    pocketsphinx's wheel (phones lower-case, stress removed). Empty when the file is absent.

    flite's lexicon is derived from the same dictionary, so its phone counts split a run of
    flite's phones into its words exactly whenever every word is listed.
    """
    from avflow_cli.checkpoints import find_checkpoint

    model = find_checkpoint("pocketsphinx")  # the wheel's model/en-us folder, as the recogniser's
    if model is None:
        return {}
    try:
        lines = (model / "cmudict-en-us.dict").read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return {}
    out: dict[str, tuple[str, ...]] = {}
    for line in lines:
        word, _, phones = line.partition(" ")
        if "(" not in word and phones:  # first pronunciation only
            out.setdefault(normalize_word(word), tuple(ph.lower().rstrip("012") for ph in phones.split()))
    return out


@lru_cache(maxsize=1)
def _dictionary_phone_counts() -> dict[str, int]:
    """Phones per word (see ``_pronunciations``)."""
    return {w: len(p) for w, p in _pronunciations().items()}


def _dictionary_split(words: list[str], phones: list[Any]) -> list[list[Any]] | None:
    """Each word's run of ``phones`` by dictionary phone counts, or None when they do not add up."""
    counts = [_dictionary_phone_counts().get(w, 0) for w in words]
    if not (all(counts) and sum(counts) == len(phones)):
        return None
    bounds = np.concatenate([[0], np.cumsum(counts)])
    return [phones[a:b] for a, b in zip(bounds[:-1], bounds[1:])]


def _spread(words: list[str], phones: list[tuple[float, float]]) -> list[WordSpan]:
    """Give consecutive phones to words: by dictionary phone counts when they add up exactly,
    otherwise in proportion to the words' letter counts."""
    split = _dictionary_split(words, phones)
    if split is not None:
        return [(w, run[0][0], run[-1][1]) for w, run in zip(words, split)]
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


# Letters that can spell (the start of) each phone of flite's / CMU's set: the letter-to-phone
# aligner's only knowledge of English spelling.
_SPELLINGS: dict[str, str] = {
    "p": "P", "b": "B", "m": "M", "f": "FPHG", "v": "VF", "th": "TH", "dh": "TH", "s": "SCZX", "z": "ZSX",
    "sh": "SCTXH", "zh": "SGZT", "ch": "CTH", "jh": "JGD", "k": "KCQXG", "g": "GX", "t": "TD", "d": "DT",
    "n": "NKG", "ng": "NG", "l": "L", "r": "RW", "w": "WOUQ", "y": "YIJUE", "hh": "HW", "el": "L", "em": "M",
    "en": "N", "aa": "AO", "ae": "A", "ah": "UOAEI", "ao": "OAU", "aw": "OA", "ax": "AEIOUY", "ay": "IYEA",
    "eh": "EA", "er": "EIUOR", "ey": "AEI", "ih": "IEYUA", "iy": "EIY", "ow": "O", "oy": "O", "uh": "OU",
    "uw": "OUEW",
}
_VOWEL_LETTERS = "AEIOUY"
_VOWEL_PHONES = frozenset({"aa", "ae", "ah", "ao", "aw", "ax", "ay", "eh", "er", "ey", "ih", "iy", "ow", "oy", "uh", "uw"})
_SKIP_COST = 1.5  # a phone that gets no letter of its own ("x" → k s)


def _letter_cost(char: str, phone: str) -> float:
    """0 when ``char`` can spell ``phone``, 0.5 for another vowel letter on a vowel, else 1."""
    if char in _SPELLINGS.get(phone, char):
        return 0.0
    return 0.5 if phone in _VOWEL_PHONES and char in _VOWEL_LETTERS else 1.0
LetterSpan = tuple[str, float, float]  # (label character, start_s, end_s)


def align_letters(word: str, phones: Sequence[Sequence[Any]]) -> list[int]:
    """Phone index of each letter: a monotonic alignment that prefers letters that can spell
    their phone (``_SPELLINGS``) and gives every phone a letter when there are enough letters.

    ``phones``: [(name, start, end), ...] of one word. Silent letters share the previous phone.
    """
    m, n = len(word), len(phones)
    names = [str(p[0]).lower().rstrip("012") for p in phones]
    cost = np.array([[_letter_cost(c, ph) for ph in names] for c in word])  # (m, n)
    best = np.full((m, n), np.inf)
    back = np.zeros((m, n), dtype=np.int64)
    best[0, 0] = cost[0, 0]
    if n > 1:
        best[0, 1] = cost[0, 1] + _SKIP_COST
    for j in range(1, m):
        for i in range(n):
            for prev, extra in ((i, 0.0), (i - 1, 0.0), (i - 2, _SKIP_COST)):
                if prev >= 0 and best[j - 1, prev] + extra + cost[j, i] < best[j, i]:
                    best[j, i] = best[j - 1, prev] + extra + cost[j, i]
                    back[j, i] = prev
    ends = [(best[m - 1, n - 1], n - 1)] + ([(best[m - 1, n - 2] + _SKIP_COST, n - 2)] if n > 1 else [])
    i = min(ends)[1]
    path = [i]
    for j in range(m - 1, 0, -1):
        i = int(back[j, i])
        path.append(i)
    return path[::-1]


def _word_letters(word: str, start: float, end: float, phones: Sequence[Sequence[Any]] | None) -> list[LetterSpan]:
    """Letter spans of one word: at the phones they spell when its phones are known, else evenly."""
    if not phones:
        edges = start + (end - start) * np.arange(len(word) + 1) / len(word)
        return [(c, float(a), float(b)) for c, a, b in zip(word, edges[:-1], edges[1:])]
    owner = align_letters(word, phones)
    spans = []
    for j, (char, i) in enumerate(zip(word, owner)):
        share = [k for k, o in enumerate(owner) if o == i]  # letters on this phone split its time
        p_start, p_end = float(phones[i][1]), float(phones[i][2])
        a = p_start + (p_end - p_start) * share.index(j) / len(share)
        spans.append((char, a, 0.0))
    nexts = [s[1] for s in spans[1:]] + [float(end)]
    return [(c, a, max(b, a)) for (c, a, _), b in zip(spans, nexts)]


def letter_spans(turn: dict[str, Any]) -> list[LetterSpan]:
    """Timed letters of one transcript turn, each word followed by a zero-length "|" at its end.

    With phone timing and a dictionary split of the phones into words, each letter starts at the
    phone it spells (``align_letters``); otherwise letters share their word's span evenly.
    """
    spans = word_spans(turn)
    runs = _word_phone_runs(turn)
    if len(runs) != len(spans):
        runs = [None] * len(spans)
    out: list[LetterSpan] = []
    for (word, start, end), run in zip(spans, runs):
        out += _word_letters(word, start, end, run)
        out.append(("|", end, end))
    return out


def _word_phone_runs(turn: dict[str, Any]) -> list[list[tuple[str, float, float]] | None]:
    """Each word's phones (name, start, end), split by dictionary counts; [] without phone timing."""
    groups = [] if turn.get("words") else _phone_groups_named(turn.get("phones") or [])
    if not groups:
        return []
    phrases = _phrases(str(turn.get("text", "")))
    if len(groups) == len(phrases):
        split = [_dictionary_split(p, g) for p, g in zip(phrases, groups)]
        if all(runs is not None for runs in split):
            return [run for runs in split for run in runs]  # type: ignore[union-attr]
    whole = _dictionary_split([w for p in phrases for w in p], [ph for g in groups for ph in g])
    return whole or []


def _phone_groups_named(phones: Sequence[Sequence[Any]]) -> list[list[tuple[str, float, float]]]:
    """Non-pause phones (name, start, end) grouped into runs separated by pauses."""
    groups: list[list[tuple[str, float, float]]] = [[]]
    for name, start, end in phones:
        if str(name).lower() in PAUSE_PHONES:
            if groups[-1]:
                groups.append([])
        else:
            groups[-1].append((str(name), float(start), float(end)))
    return [g for g in groups if g]


def letter_logits(spans: Iterable[LetterSpan], num_frames: int, phones: Sequence[PhoneSpan] = ()) -> np.ndarray:
    """Log-posteriors (num_frames, 29) at TOKEN_RATE with one peak per letter at its start.

    Like a CTC recogniser's output: each label peaks on one frame (its letter's onset, or the
    next free frame), equal neighbours are separated by a blank, "|" closes every word.
    """
    labels = np.full(num_frames, TOKEN_BLANK, dtype=np.int64)  # (N,)
    last, prev = -1, None
    for char, start, _ in spans:
        pos = max(int(np.floor(start * TOKEN_RATE)), last + 1 + (char == prev))
        if pos >= num_frames:
            break
        labels[pos] = _LABEL_INDEX[char]
        last, prev = pos, char
    return _posteriors(labels, phones)


def _posteriors(labels: np.ndarray, phones: Sequence[PhoneSpan] = ()) -> np.ndarray:
    """Peaky log-posteriors (N, 29) of one label per frame (PEAK_PROB, neighbours SPREAD_PROB),
    with ``SOUND_PROB`` moved onto the sound letters of the phone each frame lies in."""
    onehot = np.eye(TOKEN_DIM)[labels]  # (N, 29)
    post = PEAK_PROB * onehot
    post[1:] += SPREAD_PROB * onehot[:-1]
    post[:-1] += SPREAD_PROB * onehot[1:]
    post[0] += SPREAD_PROB * onehot[0]  # the ends keep their mass
    post[-1] += SPREAD_PROB * onehot[-1]
    post /= post.sum(axis=1, keepdims=True)
    sound = sound_profile(phones, len(labels))  # (N, 29), rows sum to 1 inside phones, else 0
    inside = sound.sum(axis=1, keepdims=True)  # (N, 1)
    post = (1.0 - SOUND_PROB * inside) * post + SOUND_PROB * sound
    post += FLOOR_PROB / TOKEN_DIM
    post /= post.sum(axis=1, keepdims=True)
    return np.log(post).astype(np.float32)


@lru_cache(maxsize=None)
def _sound_row(phone: str) -> np.ndarray | None:
    """(29,) letter weights of one phone (1, 1/2, 1/4 … normalised), None for pauses/unknown."""
    letters = SOUND_LETTERS.get(phone.lower().rstrip("012"))
    if not letters:
        return None
    row = np.zeros(TOKEN_DIM)
    for k, char in enumerate(letters):
        row[_LABEL_INDEX[char]] += 0.5**k
    return row / row.sum()


def sound_profile(phones: Sequence[PhoneSpan], num_frames: int) -> np.ndarray:
    """(num_frames, 29) at TOKEN_RATE: each frame whose centre lies in a phone gets that phone's
    sound-letter weights (rows sum to 1); frames in pauses or outside every phone stay 0."""
    out = np.zeros((num_frames, TOKEN_DIM))
    centres = (np.arange(num_frames) + 0.5) / TOKEN_RATE  # (N,)
    for name, start, end in phones:
        row = _sound_row(str(name))
        if row is not None:
            a, b = np.searchsorted(centres, [float(start), float(end)])
            out[a:b] = row
    return out


def phone_spans(turn: dict[str, Any]) -> list[PhoneSpan]:
    """Timed phones of one turn: its own ``phones`` when present, else each timed word's
    dictionary pronunciation spread evenly over the word (unlisted words get none)."""
    if turn.get("phones"):
        return [(str(n), float(a), float(b)) for n, a, b in turn["phones"] if str(n).lower() not in PAUSE_PHONES]
    out: list[PhoneSpan] = []
    for word, start, end in word_spans(turn) if turn.get("words") or turn.get("text") else []:
        pron = _pronunciations().get(word)
        if pron:
            edges = start + (end - start) * np.arange(len(pron) + 1) / len(pron)
            out += [(ph, float(a), float(b)) for ph, a, b in zip(pron, edges[:-1], edges[1:])]
    return out


def ctc_logits(spans: Iterable[WordSpan], num_frames: int, phones: Sequence[PhoneSpan] = ()) -> np.ndarray:
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
    return _posteriors(labels, phones)


def greedy_decode(logits: np.ndarray) -> str:
    """Greedy CTC decoding: argmax, merge repeats, drop blanks, "|" → space."""
    ids = np.asarray(logits).argmax(axis=-1)  # (N,)
    keep = np.concatenate([[True], ids[1:] != ids[:-1]]) & (ids != TOKEN_BLANK)
    text = "".join(TOKEN_LABELS[i] for i in ids[keep]).replace("|", " ")
    return " ".join(text.split())


def tokens_from_transcript(turns: Sequence[dict[str, Any]], duration_s: float, speaker: str | None) -> np.ndarray:
    """CTC-shaped logits (N_tok, 29) at 50 Hz for ``speaker``'s turns (None: every turn)."""
    mine = [t for t in turns if speaker is None or t.get("speaker") == speaker]
    spans = sorted((s for t in mine for s in letter_spans(t)), key=lambda s: s[1])
    phones = [ph for t in mine for ph in phone_spans(t)]
    return letter_logits(spans, num_token_frames(duration_s), phones)


def has_timing(transcript: dict[str, Any], speaker: str | None = None) -> bool:
    """Whether the transcript's turns (of ``speaker``) carry phone or word timings."""
    turns = [t for t in transcript.get("turns", []) if speaker is None or t.get("speaker") == speaker]
    return bool(turns) and all(t.get("phones") or t.get("words") for t in turns)


def alignment_turn(path: str | Path, text: str) -> dict[str, Any]:
    """Read ``alignments/ID.json`` as one transcript turn.

    Accepted: ``{"words": [[w, s, e], ...]}``, ``{"phones": [[p, s, e], ...]}`` (text from
    metadata.csv) or a session-style ``{"turns": [...]}`` (all turns joined).
    """
    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, "file not found (needed for --source alignment)")
    obj = read_json(path)
    if "turns" in obj:
        turns = obj["turns"]
        return {
            "text": " ".join(t.get("text", "") for t in turns),
            "words": [w for t in turns for w in word_spans(t)],
        }
    if not (obj.get("words") or obj.get("phones")):
        raise InputFileError(path, "no 'words' or 'phones' timing")
    return {"text": obj.get("text", text), "words": obj.get("words"), "phones": obj.get("phones")}
