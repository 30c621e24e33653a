"""The probe's sentence sets: ``dev`` (the ten sentences that chose designs) and ``test`` (frozen, never tuned on).

The ten probe sentences chose the token design, the sampling temperature and the vocoder
variant, so they are a development set. ``resources/test_sentences.txt`` is the final test set:
written once, frozen on the date in its header, checked to share no sentence and no five-word
run with any text the project trains on (``tests/metrics/test_sentence_sets.py``); headline
numbers are quoted on it beside the development numbers (docs/quality.md).

The overlap rule is here so the test and anyone adding a training text check the same thing:
sentences are compared after :func:`normalise` (case, punctuation and spacing removed), runs
of :data:`RUN_WORDS` consecutive normalised words are compared across sentence boundaries of
neither side.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from importlib import resources

SETS = {"dev": "probe_sentences.txt", "test": "test_sentences.txt"}  # --sentences NAME → resources file
RUN_WORDS = 5  # a shared run of this many words counts as overlap
TEST_FROZEN = "2026-12-07"  # the date in the test set's header
# sha256 of the test set's sentence lines joined by "\n": a changed sentence fails the tests
TEST_SHA256 = "38be57bf85ef103cf16cf45524e446872c77be58a10a456d797711dbdef715b2"
_WORD = re.compile(r"[a-z0-9']+")


def sentence_set(name: str) -> list[str]:
    """The sentences of set ``name`` (``dev`` or ``test``); lines starting with ``#`` are its header."""
    if name not in SETS:
        raise ValueError(f"unknown sentence set {name!r}: choose {' or '.join(SETS)}")
    text = resources.files("avflow_cli.resources").joinpath(SETS[name]).read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def sentences_sha256(sentences: list[str]) -> str:
    """The fingerprint :data:`TEST_SHA256` records."""
    import hashlib

    return hashlib.sha256("\n".join(sentences).encode("utf-8")).hexdigest()


def words(text: str) -> list[str]:
    """Lower-case words without punctuation (apostrophes kept: "it's" ≠ "its")."""
    return _WORD.findall(text.lower().replace("’", "'"))


def normalise(text: str) -> str:
    """A sentence as compared for identity: its words joined by single spaces."""
    return " ".join(words(text))


def word_runs(text: str, n: int = RUN_WORDS) -> set[tuple[str, ...]]:
    """Every run of ``n`` consecutive words of ``text`` (none when it has fewer)."""
    w = words(text)
    return {tuple(w[i:i + n]) for i in range(len(w) - n + 1)}


def overlaps(candidates: Iterable[str], training: Iterable[str], n: int = RUN_WORDS) -> list[str]:
    """One line per candidate sentence that equals a training text or shares an ``n``-word run with one."""
    training = list(training)
    same = {normalise(t) for t in training}
    runs: dict[tuple[str, ...], str] = {}
    for text in training:
        for run in word_runs(text, n):
            runs.setdefault(run, text)
    found = []
    for sentence in candidates:
        if normalise(sentence) in same:
            found.append(f"{sentence!r} is a training sentence")
            continue
        shared = sorted(word_runs(sentence, n) & runs.keys())
        if shared:
            found.append(f"{sentence!r} shares {' '.join(shared[0])!r} with {runs[shared[0]]!r}")
    return found


def vocabulary_runs(candidates: Iterable[str], vocabulary: Iterable[str], n: int = RUN_WORDS) -> list[str]:
    """Candidates with ``n`` consecutive words all from ``vocabulary``: the runs a generator of random
    sentences over that vocabulary (``data/synthetic_ljspeech.WORDS``) can produce."""
    vocab = {w.lower() for w in vocabulary}
    return [f"{s!r}: {' '.join(run)!r} is all generator vocabulary" for s in candidates
            for run in sorted(word_runs(s, n)) if set(run) <= vocab]
