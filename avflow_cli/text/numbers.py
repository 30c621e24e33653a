"""Numbers to English words, so the phonemizer reads "1984", "$3.50" and "21st" as a speaker would.

The rules follow the keithito/Tacotron recipe that Matcha-TTS and the release carry
(commas dropped, currency, decimals, ordinals, years between 1000 and 3000 read in pairs);
the spelling-out itself is ours and needs no ``inflect``.
"""

from __future__ import annotations

import re

_ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen"
).split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_SCALES = ("", "thousand", "million", "billion", "trillion", "quadrillion")
_ORDINAL_WORDS = {
    "one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth",
    "nine": "ninth", "twelve": "twelfth",
}

_comma_number_re = re.compile(r"([0-9][0-9,]+[0-9])")
_decimal_number_re = re.compile(r"([0-9]+\.[0-9]+)")
_pounds_re = re.compile(r"£([0-9,]*[0-9]+)")
_dollars_re = re.compile(r"\$([0-9.,]*[0-9]+)")
_ordinal_re = re.compile(r"([0-9]+)(st|nd|rd|th)\b")
_number_re = re.compile(r"[0-9]+")


def _below_thousand(n: int) -> str:
    """Words for 0 < n < 1000 (no "and", as in American reading)."""
    words = []
    if n >= 100:
        words += [_ONES[n // 100], "hundred"]
        n %= 100
    if n >= 20:
        words.append(_TENS[n // 10] + (f"-{_ONES[n % 10]}" if n % 10 else ""))
    elif n > 0:
        words.append(_ONES[n])
    return " ".join(words)


def cardinal(n: int) -> str:
    """Cardinal words: ``cardinal(2045) == "two thousand forty-five"``."""
    if n < 0:
        return "minus " + cardinal(-n)
    if n == 0:
        return "zero"
    groups = []
    scale = 0
    while n > 0:
        n, rest = divmod(n, 1000)
        if rest:
            if scale >= len(_SCALES):
                raise ValueError("number too large to spell out")
            groups.append(_below_thousand(rest) + (f" {_SCALES[scale]}" if _SCALES[scale] else ""))
        scale += 1
    return " ".join(reversed(groups))


def ordinal(n: int) -> str:
    """Ordinal words: ``ordinal(21) == "twenty-first"``."""
    words = cardinal(n)
    head, sep, last = words.rpartition(" ")
    prefix, dash, unit = last.rpartition("-")
    if unit in _ORDINAL_WORDS:
        unit = _ORDINAL_WORDS[unit]
    elif unit.endswith("y"):
        unit = unit[:-1] + "ieth"
    else:
        unit += "th"
    return f"{head}{sep}{prefix}{dash}{unit}"


def year_or_cardinal(n: int) -> str:
    """Read 1001..2999 like a year ("nineteen eighty-four", "two thousand five"), else cardinal."""
    if 1000 < n < 3000:
        if n == 2000:
            return "two thousand"
        if 2000 < n < 2010:
            return "two thousand " + cardinal(n % 100)
        if n % 100 == 0:
            return cardinal(n // 100) + " hundred"
        hi, lo = divmod(n, 100)
        return cardinal(hi) + " " + (f"oh {cardinal(lo)}" if lo < 10 else cardinal(lo))
    return cardinal(n)


def _expand_dollars(m: re.Match[str]) -> str:
    parts = m.group(1).replace(",", "").split(".")
    if len(parts) > 2:
        return m.group(1) + " dollars"
    dollars = int(parts[0]) if parts[0] else 0
    cents = int(parts[1]) if len(parts) > 1 and parts[1] else 0
    d_unit = "dollar" if dollars == 1 else "dollars"
    c_unit = "cent" if cents == 1 else "cents"
    if dollars and cents:
        return f"{dollars} {d_unit}, {cents} {c_unit}"
    if dollars:
        return f"{dollars} {d_unit}"
    if cents:
        return f"{cents} {c_unit}"
    return "zero dollars"


def normalize_numbers(text: str) -> str:
    """Replace every digit string in ``text`` by words (currency, decimals, ordinals, years)."""
    text = _comma_number_re.sub(lambda m: m.group(1).replace(",", ""), text)
    text = _pounds_re.sub(r"\1 pounds", text)
    text = _dollars_re.sub(_expand_dollars, text)
    text = _decimal_number_re.sub(lambda m: m.group(1).replace(".", " point "), text)
    text = _ordinal_re.sub(lambda m: ordinal(int(m.group(1))), text)
    return _number_re.sub(lambda m: year_or_cardinal(int(m.group(0))), text)
