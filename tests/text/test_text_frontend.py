"""Text front end: cleaners, numbers, the 178-symbol set, espeak phonemes, symbol ids and errors."""

from __future__ import annotations

import pytest

from avflow_cli.errors import AvflowError
from avflow_cli.text import ids_to_text, intersperse, phonemes_to_ids, text_to_phonemes, texts_to_symbol_ids, to_symbol_ids
from avflow_cli.text.cleaners import clean_text, expand_abbreviations, normalize_punctuation
from avflow_cli.text.numbers import cardinal, normalize_numbers, ordinal, year_or_cardinal
from avflow_cli.text.symbols import N_SYMBOLS, PAD_ID, SPACE_ID, SYMBOL_TO_ID, SYMBOLS


# ------------------------------------------------------------------------------------ numbers
@pytest.mark.parametrize(("n", "words"), [
    (0, "zero"), (7, "seven"), (13, "thirteen"), (40, "forty"), (42, "forty-two"), (100, "one hundred"),
    (101, "one hundred one"), (999, "nine hundred ninety-nine"), (1000, "one thousand"),
    (2045, "two thousand forty-five"), (1_000_000, "one million"), (3_000_017, "three million seventeen"),
])
def test_cardinal(n: int, words: str) -> None:
    assert cardinal(n) == words


@pytest.mark.parametrize(("n", "words"), [
    (1, "first"), (2, "second"), (3, "third"), (5, "fifth"), (12, "twelfth"), (20, "twentieth"),
    (21, "twenty-first"), (100, "one hundredth"), (103, "one hundred third"),
])
def test_ordinal(n: int, words: str) -> None:
    assert ordinal(n) == words


def test_years_read_in_pairs() -> None:
    assert year_or_cardinal(1984) == "nineteen eighty-four"
    assert year_or_cardinal(1907) == "nineteen oh seven"
    assert year_or_cardinal(1900) == "nineteen hundred"
    assert year_or_cardinal(2000) == "two thousand"
    assert year_or_cardinal(2005) == "two thousand five"
    assert year_or_cardinal(3000) == "three thousand"


def test_normalize_numbers_in_text() -> None:
    assert normalize_numbers("$3.50") == "three dollars, fifty cents"
    assert normalize_numbers("$1") == "one dollar"
    assert normalize_numbers("£20") == "twenty pounds"
    assert normalize_numbers("12,500 people") == "twelve thousand five hundred people"
    assert normalize_numbers("1,250") == "twelve fifty"  # 1001..2999 read like years, as in Tacotron
    assert normalize_numbers("pi is 3.14") == "pi is three point fourteen"
    assert normalize_numbers("the 21st day") == "the twenty-first day"
    assert "0" not in normalize_numbers("room 404 in 1999")


# ------------------------------------------------------------------------------------ cleaners
def test_cleaners_chain() -> None:
    assert expand_abbreviations("dr. smith and mrs. jones") == "doctor smith and misess jones"
    assert normalize_punctuation("a & b (c) - d/e") == "a  and  b ,c,   d e"
    assert clean_text("  Café  No. 5,  Dr.  Who!  ") == "cafe no. five, doctor who!"
    assert clean_text("100% R&D") == "one hundred percent r and d"


# ------------------------------------------------------------------------------------ symbols
def test_symbol_set_is_the_release_set() -> None:
    assert N_SYMBOLS == len(SYMBOLS) == 178
    assert SYMBOLS[PAD_ID] == "_" and SPACE_ID == 16 and SYMBOLS[16] == " "
    assert SYMBOLS[1:17] == tuple(';:,.!?¡¿—…"«»“” ')
    assert SYMBOLS[17:69] == tuple("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
    # a few IPA anchors and the duplicated apostrophe (the release maps it to its last index)
    assert SYMBOLS[69] == "ɑ" and SYMBOLS[156] == "ˈ" and SYMBOLS[157] == "ˌ" and SYMBOLS[177] == "ᵻ"
    assert SYMBOLS[174] == SYMBOLS[176] == "'" and SYMBOL_TO_ID["'"] == 176
    assert len(SYMBOL_TO_ID) == 177


def test_intersperse_and_round_trip() -> None:
    assert intersperse([5, 6]) == [0, 5, 0, 6, 0]
    assert intersperse([]) == [0]
    ipa = "həlˈoʊ wˈɜːld!"
    ids = phonemes_to_ids(ipa)
    assert ids_to_text(ids) == ipa
    assert ids_to_text(intersperse(ids))[1::2] == ipa


# ------------------------------------------------------------------------------------ espeak
def test_phonemizer_known_words() -> None:
    hello, world = text_to_phonemes(["hello", "World!"])
    assert hello == "həlˈoʊ"
    assert world == "wˈɜːld!"


def test_to_symbol_ids_full_chain() -> None:
    ids = to_symbol_ids("Hello, Dr. Smith!")
    assert ids[0::2] == [PAD_ID] * (len(ids) // 2 + 1)  # blanks at both ends and between
    text = ids_to_text(ids[1::2])
    assert text.startswith("həlˈoʊ, dˈɑːktɚ") and text.endswith("!")
    assert all(0 <= i < N_SYMBOLS for i in ids)
    assert to_symbol_ids("hello", blanks=False) == [SYMBOL_TO_ID[c] for c in "həlˈoʊ"]


def test_batch_keeps_alignment_with_empty_cleaned_lines() -> None:
    with pytest.raises(AvflowError, match="no pronounceable"):
        texts_to_symbol_ids(["hello", "###", "world"])
    a, b = texts_to_symbol_ids(["hello", "world"])
    assert ids_to_text(a[1::2]) == "həlˈoʊ" and ids_to_text(b[1::2]) == "wˈɜːld"


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_empty_text_is_a_user_error(text: str) -> None:
    with pytest.raises(AvflowError, match="empty text"):
        to_symbol_ids(text)


@pytest.mark.parametrize("text", ["###", "😀😀", "...", "—"])
def test_unpronounceable_text_is_a_user_error(text: str) -> None:
    with pytest.raises(AvflowError, match="no pronounceable symbols"):
        to_symbol_ids(text)


def test_unknown_characters_are_dropped() -> None:
    assert phonemes_to_ids("a\u0301b") == [SYMBOL_TO_ID["a"], SYMBOL_TO_ID["b"]]
