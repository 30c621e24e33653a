"""Text cleaners applied before phonemisation (the release's ``english_cleaners2`` chain, plus numbers).

Order: ASCII transliteration → lowercase → numbers to words → abbreviations → punctuation
normalisation → whitespace collapse. The release skips the number step (espeak then reads
digits itself); we spell numbers out so currency, ordinals and years read naturally.
"""

from __future__ import annotations

import re

from unidecode import unidecode

from avflow_cli.text.numbers import normalize_numbers

_whitespace_re = re.compile(r"\s+")

# (abbreviation, expansion) pairs of the keithito/Matcha English cleaners, matched with a dot.
_ABBREVIATIONS = [
    (re.compile(rf"\b{abbr}\.", re.IGNORECASE), full)
    for abbr, full in (
        ("mrs", "misess"), ("mr", "mister"), ("dr", "doctor"), ("st", "saint"), ("co", "company"),
        ("jr", "junior"), ("maj", "major"), ("gen", "general"), ("drs", "doctors"),
        ("rev", "reverend"), ("lt", "lieutenant"), ("hon", "honorable"), ("sgt", "sergeant"),
        ("capt", "captain"), ("esq", "esquire"), ("ltd", "limited"), ("col", "colonel"),
        ("ft", "fort"),
    )
]

# Symbols read as words, and characters outside the release's punctuation mapped onto it.
_SYMBOL_WORDS = (("&", " and "), ("%", " percent "), ("@", " at "), ("+", " plus "), ("=", " equals "))
_PUNCTUATION_MAP = str.maketrans({
    "(": ",", ")": ",", "[": ",", "]": ",", "{": ",", "}": ",",
    "-": " ", "_": " ", "/": " ", "\\": " ", "*": " ", "#": " ", "~": " ", "^": " ", "|": " ",
    "<": " ", ">": " ", "`": "'",
})


def convert_to_ascii(text: str) -> str:
    """Transliterate to ASCII ("café" → "cafe"); characters with no reading vanish."""
    return unidecode(text)


def lowercase(text: str) -> str:
    return text.lower()


def expand_abbreviations(text: str) -> str:
    """"Dr. Smith" → "doctor Smith" (only dotted abbreviations, as in the release)."""
    for regex, replacement in _ABBREVIATIONS:
        text = regex.sub(replacement, text)
    return text


def normalize_punctuation(text: str) -> str:
    """Read symbols as words and map brackets/dashes/slashes onto pauses or spaces.

    espeak would otherwise either drop them silently or, with punctuation preserved, emit
    characters outside the 178-symbol set.
    """
    for sym, word in _SYMBOL_WORDS:
        text = text.replace(sym, word)
    return text.translate(_PUNCTUATION_MAP)


def collapse_whitespace(text: str) -> str:
    return _whitespace_re.sub(" ", text).strip()


def clean_text(text: str) -> str:
    """The full pre-phonemisation chain: what the phonemizer sees."""
    text = convert_to_ascii(text)
    text = lowercase(text)
    text = normalize_numbers(text)
    text = expand_abbreviations(text)
    text = normalize_punctuation(text)
    return collapse_whitespace(text)
