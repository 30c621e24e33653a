"""Sentences of a text, and whether text-to-tokens can say it: the text front end every path shares.

Synthesis (`synth.py`), the server and the live session split a text the same way and check it
the same way before anything is generated, so a bad line is refused in one line wherever it enters.
"""

from __future__ import annotations

import re

from avflow_cli.checks import check_text
from avflow_cli.errors import AvflowError

_SENTENCE_END = re.compile(r"(?<=[.!?;:])\s+")
MAX_SENTENCE_CHARS = 300  # longer sentences are split at commas, then spaces


def split_sentences(text: str) -> list[str]:
    """Split text into sentence chunks for text-to-tokens (≤ MAX_SENTENCE_CHARS each)."""
    chunks: list[str] = []
    for sentence in _SENTENCE_END.split(text.strip()):
        sentence = sentence.strip()
        while len(sentence) > MAX_SENTENCE_CHARS:
            cut = sentence.rfind(",", 0, MAX_SENTENCE_CHARS)
            if cut <= 0:
                cut = sentence.rfind(" ", 0, MAX_SENTENCE_CHARS)
            cut = cut if cut > 0 else MAX_SENTENCE_CHARS
            chunks.append(sentence[: cut + 1].strip())
            sentence = sentence[cut + 1 :].strip()
        if sentence:
            chunks.append(sentence)
    return chunks


def text_problems(texts: list[str]) -> list[str | None]:
    """Why text-to-tokens cannot say each text (None where it can), without synthesizing anything.

    Runs the text front end (cleaners → espeak, one call for all sentences → symbols) that
    synthesis runs sentence by sentence, so a bad line is found before the first one is spoken.
    """
    from avflow_cli.text import phonemes_to_ids, text_to_phonemes  # espeak loads on first use

    problems: list[str | None] = [None if split_sentences(t) else "empty text: nothing to synthesize" for t in texts]
    for i, t in enumerate(texts):
        try:
            check_text(t)
        except AvflowError as err:
            problems[i] = str(err)
    texts = [t if problems[i] is None else "" for i, t in enumerate(texts)]
    sentences = [(i, s) for i, t in enumerate(texts) for s in split_sentences(t)]
    for (i, sentence), phonemes in zip(sentences, text_to_phonemes([s for _, s in sentences]), strict=True):
        if problems[i] is None:
            try:
                phonemes_to_ids(phonemes, source=sentence)
            except AvflowError as err:
                problems[i] = str(err)
    return problems
