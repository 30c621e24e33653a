"""Text front end of text-to-tokens: cleaners, numbers, espeak phonemes and the 178-symbol set.

``to_symbol_ids("Hello!")`` runs the whole chain (cleaners → espeak IPA with stress → symbol
ids → blanks interspersed) and is what both training and synthesis feed the text encoder.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

from avflow_cli.errors import AvflowError
from avflow_cli.text.cleaners import clean_text
from avflow_cli.text.phonemize import phonemize
from avflow_cli.text.symbols import ID_TO_SYMBOL, N_SYMBOLS, PAD_ID, PUNCTUATION, SYMBOL_TO_ID, SYMBOLS

__all__ = [
    "N_SYMBOLS", "PAD_ID", "SYMBOLS", "clean_text", "ids_to_text", "intersperse", "phonemes_to_ids",
    "text_to_phonemes", "to_symbol_ids", "texts_to_symbol_ids",
]

log = logging.getLogger(__name__)
_whitespace_re = re.compile(r"\s+")
_SILENT_IDS = frozenset(SYMBOL_TO_ID[c] for c in PUNCTUATION) | {PAD_ID}


def intersperse(ids: Sequence[int], item: int = PAD_ID) -> list[int]:
    """Put ``item`` between all ids and at both ends: [a, b] → [item, a, item, b, item]."""
    out = [item] * (2 * len(ids) + 1)
    out[1::2] = ids
    return out


def text_to_phonemes(texts: Sequence[str]) -> list[str]:
    """Raw texts → IPA strings with stress marks, whitespace collapsed (batched espeak call)."""
    cleaned = [clean_text(t) for t in texts]
    # phonemizer silently drops empty lines, so only non-empty ones go to espeak.
    keep = [i for i, c in enumerate(cleaned) if c]
    out = [""] * len(cleaned)
    for i, p in zip(keep, phonemize([cleaned[i] for i in keep]), strict=True):
        out[i] = _whitespace_re.sub(" ", p).strip()
    return out


def phonemes_to_ids(phonemes: str, *, source: str = "") -> list[int]:
    """IPA string → symbol ids without blanks; unknown characters are dropped (logged).

    Raises AvflowError when nothing pronounceable is left (``source`` names the text in it).
    """
    ids = [SYMBOL_TO_ID[c] for c in phonemes if c in SYMBOL_TO_ID]
    dropped = {c for c in phonemes if c not in SYMBOL_TO_ID}
    if dropped:
        log.debug("dropped symbols outside the 178-symbol set: %s", "".join(sorted(dropped)))
    if not any(i not in _SILENT_IDS for i in ids):
        what = f"text {source!r}" if source else "text"
        raise AvflowError(f"{what} has no pronounceable symbols (empty, or only unknown characters)")
    return ids


def texts_to_symbol_ids(texts: Sequence[str], *, blanks: bool = True) -> list[list[int]]:
    """Many texts → id lists in one espeak call (training data); same rules as ``to_symbol_ids``."""
    for t in texts:
        if not t or not t.strip():
            raise AvflowError("empty text: nothing to say")
    out = [phonemes_to_ids(p, source=t) for p, t in zip(text_to_phonemes(texts), texts, strict=True)]
    return [intersperse(ids) for ids in out] if blanks else out


def to_symbol_ids(text: str, *, blanks: bool = True) -> list[int]:
    """Text → the encoder's input ids (cleaners → espeak IPA → 178 symbols → blanks interspersed)."""
    return texts_to_symbol_ids([text], blanks=blanks)[0]


def ids_to_text(ids: Sequence[int]) -> str:
    """Ids → symbol string (blanks kept as ``_``); the inverse of the symbol lookup."""
    return "".join(ID_TO_SYMBOL[int(i)] for i in ids)

