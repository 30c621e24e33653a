"""Praat TextGrid reading: long and short text formats, point tiers, encodings, malformed files."""

from __future__ import annotations

from pathlib import Path

import pytest

from avflow_cli.audio.textgrid import Interval, parse_textgrid, read_textgrid, speech_intervals
from avflow_cli.errors import InputFileError

LONG = '''File type = "ooTextFile"
Object class = "TextGrid"

xmin = 0
xmax = 2.5
tiers? <exists>
size = 2
item []:
    item [1]:
        class = "IntervalTier"
        name = "words"
        xmin = 0
        xmax = 2.5
        intervals: size = 3
        intervals [1]:
            xmin = 0
            xmax = 0.75
            text = ""
        intervals [2]:
            xmin = 0.75
            xmax = 1.5
            text = "say ""hi"" [1] 2"
        intervals [3]:
            xmin = 1.5
            xmax = 2.5
            text = "sil"
    item [2]:
        class = "TextTier"
        name = "beats"
        xmin = 0
        xmax = 2.5
        points: size = 1
        points [1]:
            number = 1.25
            mark = "peak"
'''

SHORT = '''File type = "ooTextFile"
Object class = "TextGrid"

0
2.5
<exists>
2
"IntervalTier"
"words"
0
2.5
3
0
0.75
""
0.75
1.5
"say ""hi"" [1] 2"
1.5
2.5
"sil"
"TextTier"
"beats"
0
2.5
1
1.25
"peak"
'''

EXPECTED = {"words": [Interval(0.0, 0.75, ""), Interval(0.75, 1.5, 'say "hi" [1] 2'), Interval(1.5, 2.5, "sil")],
            "beats": [Interval(1.25, 1.25, "peak")]}


def test_long_and_short_formats_read_the_same() -> None:
    assert parse_textgrid(LONG) == EXPECTED
    assert parse_textgrid(SHORT) == EXPECTED


def test_utf16_file_and_speech_intervals(tmp_path: Path) -> None:
    path = tmp_path / "a.TextGrid"
    path.write_text(LONG, encoding="utf-16")  # Praat's own default when a label is not ASCII
    tiers = read_textgrid(path)
    assert tiers == EXPECTED
    assert speech_intervals(tiers["words"]) == [(0.75, 1.5)]  # "" and "sil" are silence


@pytest.mark.parametrize("text, problem", [
    ("hello", "not a Praat TextGrid"),
    (LONG[: LONG.index("intervals [3]")], "ends in the middle"),  # a truncated file
    (LONG.replace("intervals: size = 3", "intervals: size = 4"), "expected a number, found 'TextTier'"),
    (LONG.replace('xmax = 0.75', 'xmax = "x"'), "expected a number"),
    (LONG.replace('"IntervalTier"', '"Spline"'), "unknown tier class"),
])
def test_malformed_grids_name_the_file_and_the_problem(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "bad.TextGrid"
    path.write_text(text)
    with pytest.raises(InputFileError, match=problem) as err:
        read_textgrid(path)
    assert "bad.TextGrid" in str(err.value)


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="cannot read"):
        read_textgrid(tmp_path / "missing.TextGrid")
    (tmp_path / "bin.TextGrid").write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF\x80\x81")
    with pytest.raises(InputFileError, match="not a TextGrid"):
        read_textgrid(tmp_path / "bin.TextGrid")
