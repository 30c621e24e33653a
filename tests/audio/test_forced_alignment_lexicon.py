"""Words outside the CMU dictionary: the forced aligner pronounces them by flite's letter-to-sound
rules (avflow_cli/audio/forced_alignment.py), records the guess, and still refuses a wrong text."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from avflow_cli.audio import forced_alignment as fa
from avflow_cli.audio.flite import TRACK_RATE, Flite
from avflow_cli.constants import TOKEN_SAMPLE_RATE

needs_flite = pytest.mark.skipif(shutil.which("flite") is None or shutil.which(fa.LTS_PROGRAM) is None,
                                 reason="flite (Debian package, with t2p) not installed: `make install`")
CMU_PHONES = set("AA AE AH AO AW AY B CH D DH EH ER EY F G HH IH IY JH K L M N NG OW OY P R S SH T TH UH UW V W Y Z ZH".split())


@needs_flite
def test_letter_to_sound_speaks_the_aligners_phone_set() -> None:
    assert fa.letter_to_sound("unmute") == "AH N M Y UW T"  # flite's reduced vowel "ax" is the CMU set's AH
    for word in ("pbx", "digium", "rerecord", "semicolon"):
        phones = fa.letter_to_sound(word)
        assert phones and set(phones.split()) <= CMU_PHONES, (word, phones)
    assert fa.letter_to_sound("www.asterisk.org") is None  # only what alignment_words can produce is looked up


@needs_flite
def test_a_word_outside_the_dictionary_is_aligned_and_recorded() -> None:
    assert TRACK_RATE == TOKEN_SAMPLE_RATE  # flite speaks at the aligner's rate
    flite = Flite()
    try:
        said = flite.synth("Please unmute the line now.", "slt")
        other = flite.synth("Please call the office now.", "slt")
    finally:
        flite.close()
    ali = fa.check_transcript(said.audio, "Please unmute the line now.")
    assert [w for w, _, _ in ali.words] == ["PLEASE", "UNMUTE", "THE", "LINE", "NOW"]
    assert ali.guessed == {"unmute": "AH N M Y UW T"}
    start, end = next((s, e) for w, s, e in ali.words if w == "UNMUTE")
    flite_unmute = [p for p in said.phones if p[0] in ("ax", "n", "m", "y", "uw", "t")]
    assert abs(start - flite_unmute[0][1]) < 0.06  # where flite put the word (its own phone timing)
    assert 0.2 < end - start < 0.8
    with pytest.raises(fa.AlignmentError, match="does not match"):  # a guessed word does not make any text fit
        fa.check_transcript(other.audio, "Please unmute the line now.")


def test_without_t2p_the_word_is_skipped_with_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    real_which = shutil.which
    monkeypatch.setattr(fa.shutil, "which", lambda name: None if name == fa.LTS_PROGRAM else real_which(name))
    monkeypatch.setattr(fa, "_GUESSED", {})
    lookup = type("D", (), {"lookup_word": lambda self, w: None if w == "zqxunmute" else "AH"})()
    monkeypatch.setattr(fa, "_decoder", lambda kind: lookup)
    with pytest.raises(fa.AlignmentError, match=r"not in the pronouncing dictionary: zqxunmute \(and no t2p"):
        fa.align(np.zeros(TOKEN_SAMPLE_RATE, np.float32), ["please", "zqxunmute"])
