"""Read Praat TextGrid files (long or short text format, UTF-8 or UTF-16): interval and point tiers.

Forced aligners (Montreal Forced Aligner, Praat itself) write their word and phone timings as
TextGrids; avflow reads them as ground truth for its voice-activity and alignment measurements
(docs/real_data.md). Both text formats hold the same values in the same order — the long one
only adds ``key =`` labels and ``[n]`` indices — so the file is read as a stream of values.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from avflow_cli.errors import InputFileError

# a quoted string ("" escapes a quote), a number, or the <exists>/<absent> flag; labels and
# [n] indices of the long format match nothing here (their words fall through as "other")
_TOKEN = re.compile(r'"((?:[^"]|"")*)"|(-?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)|<(exists|absent)>|\[\d*\]|[^\s"\[<]+')


@dataclass(frozen=True)
class Interval:
    """One labelled stretch of a tier, in seconds; a point tier's marks have ``start == end``."""

    start: float
    end: float
    text: str


def _decode(raw: bytes) -> str:
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return raw.decode("utf-16")
    return raw.decode("utf-8-sig")


def _values(text: str) -> list[str | float]:
    """Strings and numbers in file order (flags as ``<exists>``)."""
    out: list[str | float] = []
    for m in _TOKEN.finditer(text):
        string, number, flag = m.group(1), m.group(2), m.group(3)
        if string is not None:
            out.append(string.replace('""', '"'))
        elif number is not None:
            out.append(float(number))
        elif flag is not None:
            out.append(f"<{flag}>")
    return out


def parse_textgrid(text: str, source: str | Path = "<text>") -> dict[str, list[Interval]]:
    """Tier name → its intervals (or points), in file order; a malformed file → InputFileError."""
    values = _values(text)
    pos = 0

    def take(kind: type) -> str | float:
        nonlocal pos
        if pos >= len(values):
            raise InputFileError(source, "not a TextGrid: it ends in the middle of a tier")
        value = values[pos]
        pos += 1
        if kind is float and not isinstance(value, float):
            raise InputFileError(source, f"not a TextGrid: expected a number, found {value!r}")
        if kind is str and not isinstance(value, str):
            raise InputFileError(source, f"not a TextGrid: expected a quoted string, found {value!r}")
        return value

    if values[:2] != ["ooTextFile", "TextGrid"]:
        raise InputFileError(source, 'not a Praat TextGrid (no File type = "ooTextFile" / Object class = "TextGrid" header)')
    pos = 2
    take(float), take(float)  # xmin, xmax of the whole grid
    if take(str) != "<exists>":
        return {}
    tiers: dict[str, list[Interval]] = {}
    for _ in range(int(take(float))):
        kind, name = take(str), str(take(str))
        take(float), take(float)
        count = int(take(float))
        if kind == "IntervalTier":
            items = [Interval(float(take(float)), float(take(float)), str(take(str))) for _ in range(count)]
        elif kind == "TextTier":
            items = []
            for _ in range(count):
                t = float(take(float))
                items.append(Interval(t, t, str(take(str))))
        else:
            raise InputFileError(source, f"not a TextGrid: unknown tier class {kind!r}")
        tiers[name] = items
    return tiers


def read_textgrid(path: str | Path) -> dict[str, list[Interval]]:
    """:func:`parse_textgrid` of the file at ``path`` (missing or undecodable → InputFileError)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputFileError(path, f"cannot read TextGrid ({exc.strerror or exc})") from None
    try:
        text = _decode(raw)
    except UnicodeDecodeError:
        raise InputFileError(path, "not a TextGrid: neither UTF-8 nor UTF-16 text") from None
    return parse_textgrid(text, path)


SILENCE_LABELS = ("", "sil", "sp", "spn", "<eps>")  # what aligners write between words


def speech_intervals(tier: list[Interval], silence_labels: tuple[str, ...] = SILENCE_LABELS) -> list[tuple[float, float]]:
    """(start, end) of the labelled, non-silent intervals of ``tier``."""
    return [(iv.start, iv.end) for iv in tier if iv.text.strip().lower() not in silence_labels and iv.end > iv.start]
