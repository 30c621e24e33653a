"""CTC-shaped character logits from known timing, the token-source choice, and LJSpeech folders."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from avflow_cli import constants as K
from avflow_cli.audio import alignment_tokens as at
from avflow_cli.data.ljspeech_tokens import ljspeech_tokens
from avflow_cli.data.t2t_dataset import read_metadata
from avflow_cli.errors import AvflowError, MissingCheckpointError


def turn(text: str, phones: list, speaker: str = "actor") -> dict:
    return {"speaker": speaker, "start": phones[0][1], "end": phones[-1][2], "text": text, "phones": phones}


PHONES = [["pau", 0.0, 0.2], ["dh", 0.2, 0.25], ["ax", 0.25, 0.3], ["b", 0.3, 0.38], ["er", 0.38, 0.45],
          ["ch", 0.45, 0.56], ["k", 0.56, 0.65], ["ax", 0.65, 0.72], ["n", 0.72, 0.8], ["uw", 0.8, 0.9],
          ["pau", 0.9, 1.1], ["s", 1.1, 1.2], ["l", 1.2, 1.28], ["ih", 1.28, 1.39], ["d", 1.39, 1.45], ["pau", 1.45, 1.6]]


def test_logits_decode_back_to_the_text() -> None:
    logits = at.tokens_from_transcript([turn("The birch canoe, slid!", PHONES)], 2.0, "actor")
    assert logits.shape == (100, K.TOKEN_DIM) and logits.dtype == np.float32
    assert at.greedy_decode(logits) == "THE BIRCH CANOE SLID"
    probs = np.exp(logits)
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)  # log-posteriors
    assert (logits.argmax(1)[:10] == K.TOKEN_BLANK).all()  # silence before the first word is blank


def test_characters_stay_inside_their_words_time() -> None:
    spans = at.word_spans(turn("The birch canoe, slid!", PHONES))
    assert [w for w, _, _ in spans] == ["THE", "BIRCH", "CANOE", "SLID"]
    assert spans[-1][1] == pytest.approx(1.1) and spans[-1][2] == pytest.approx(1.45)  # phrase after the pause
    logits = at.ctc_logits(spans, 100)
    ids = logits.argmax(1)
    slid = [K.TOKEN_LABELS.index(c) for c in "SLID"]
    frames = [int(np.flatnonzero(ids == i)[-1]) for i in slid]
    assert frames == sorted(frames) and 55 <= frames[0] and frames[-1] < 74


def test_repeated_letters_survive_ctc_merging() -> None:
    spans = [("BOOKKEEPER", 0.0, 0.1), ("ALL", 0.1, 0.12)]  # far too short: letters spill over, in order
    assert at.greedy_decode(at.ctc_logits(spans, 50)) == "BOOKKEEPER ALL"


def test_other_speaker_and_unknown_characters() -> None:
    turns = [turn("Hello 42 world-wide", [["hh", 0.1, 0.5], ["ow", 0.5, 0.9]]), turn("Yeah", [["y", 1.0, 1.3]], "participant")]
    assert at.greedy_decode(at.tokens_from_transcript(turns, 2.0, "actor")) == "HELLO WORLDWIDE"
    assert at.greedy_decode(at.tokens_from_transcript(turns, 2.0, "participant")) == "YEAH"
    assert at.tokens_from_transcript(turns, 2.0, "nobody").argmax(1).max() == K.TOKEN_BLANK


def test_frames_at_50_hz() -> None:
    assert at.num_token_frames(1.0) == 50 and at.num_token_frames(2.019) == 100
    assert K.TOKEN_RATE == 50.0


def _lj_folder(root: Path, with_alignment: bool = True) -> Path:
    (root / "wavs").mkdir(parents=True)
    (root / "alignments").mkdir()
    (root / "metadata.csv").write_text("a1|The birch canoe, slid!|the birch canoe, slid!\na2|Yeah|Yeah\n")
    for item, seconds in (("a1", 1.7), ("a2", 0.6)):
        sf.write(str(root / "wavs" / f"{item}.wav"), np.zeros(int(seconds * K.SAMPLE_RATE), np.float32), K.SAMPLE_RATE)
    if with_alignment:
        (root / "alignments" / "a1.json").write_text(json.dumps({"phones": PHONES}))
        (root / "alignments" / "a2.json").write_text(json.dumps({"words": [["yeah", 0.1, 0.4]]}))
    return root


@pytest.fixture
def no_wav2vec2(monkeypatch: pytest.MonkeyPatch) -> None:
    """An asr_tokens module whose checkpoint is missing (as on a machine without the weights)."""

    class Missing:
        def __init__(self, checkpoint=None, device="cpu"):
            raise MissingCheckpointError("wav2vec2 ASR weights not found: put wav2vec2_fairseq_base_ls960_asr_ls960.pth in ~/.cache/avflow/checkpoints")

    monkeypatch.setitem(sys.modules, "avflow_cli.audio.asr_tokens", types.SimpleNamespace(Wav2Vec2Tokens=Missing))


@pytest.fixture
def fake_wav2vec2(monkeypatch: pytest.MonkeyPatch) -> None:
    """A stand-in extractor with the real one's interface: (N_tok, 29) at 50 Hz."""

    class Fake:
        name = "fake-wav2vec2"

        def __init__(self, checkpoint=None, device="cpu"):
            pass

        def logits(self, wav, sr):
            return np.zeros((int(len(wav) / sr * K.TOKEN_RATE), K.TOKEN_DIM), np.float32)

    monkeypatch.setitem(sys.modules, "avflow_cli.audio.asr_tokens", types.SimpleNamespace(Wav2Vec2Tokens=Fake))


def test_ljspeech_folder_alignment(tmp_path: Path, no_wav2vec2: None) -> None:
    folder = _lj_folder(tmp_path / "lj")
    written, used = ljspeech_tokens(folder, "auto")
    assert (written, used) == (2, "alignment")
    a1 = np.load(folder / "tokens" / "a1.npy")
    assert a1.shape == (at.num_token_frames(1.7), K.TOKEN_DIM)
    assert at.greedy_decode(a1) == "THE BIRCH CANOE SLID"
    assert at.greedy_decode(np.load(folder / "tokens" / "a2.npy")) == "YEAH"
    mtime = (folder / "tokens" / "a1.npy").stat().st_mtime_ns
    assert ljspeech_tokens(folder, "alignment") == (0, "alignment")  # finished work is skipped
    assert (folder / "tokens" / "a1.npy").stat().st_mtime_ns == mtime


def test_ljspeech_folder_wav2vec2(tmp_path: Path, fake_wav2vec2: None) -> None:
    folder = _lj_folder(tmp_path / "lj", with_alignment=False)
    assert ljspeech_tokens(folder, "auto") == (2, "wav2vec2")
    assert np.load(folder / "tokens" / "a2.npy").shape == (30, K.TOKEN_DIM)


def test_ljspeech_without_weights_or_alignments_names_the_checkpoint(tmp_path: Path, no_wav2vec2: None) -> None:
    folder = _lj_folder(tmp_path / "lj", with_alignment=False)
    (folder / "alignments").rmdir()
    with pytest.raises(AvflowError, match="wav2vec2_fairseq_base_ls960_asr_ls960.pth"):
        ljspeech_tokens(folder, "auto")
    assert not (folder / "tokens").exists()


def test_bad_metadata(tmp_path: Path) -> None:
    with pytest.raises(AvflowError, match="metadata.csv"):
        read_metadata(tmp_path)
    (tmp_path / "metadata.csv").write_text("only-an-id\n")
    with pytest.raises(AvflowError, match="line 1"):
        read_metadata(tmp_path)


def test_word_spans_follow_dictionary_phone_counts() -> None:
    """flite's phones split into words exactly by the CMU dictionary's counts (not by letters)."""
    from avflow_cli.audio.alignment_tokens import word_spans

    ends = [("pau", 0.184), ("dh", 0.228), ("ax", 0.258), ("b", 0.339), ("er", 0.454), ("ch", 0.563),
            ("k", 0.656), ("ax", 0.715), ("n", 0.793), ("uw", 0.906), ("pau", 1.0)]
    phones = [[p, s, e] for (p, e), (_, s) in zip(ends, [("", 0.0)] + ends[:-1])]
    spans = word_spans({"text": "The birch canoe.", "phones": phones, "start": 0.0, "end": 1.0})
    assert [w for w, _, _ in spans] == ["THE", "BIRCH", "CANOE"]
    np.testing.assert_allclose([(s, e) for _, s, e in spans], [(0.184, 0.258), (0.258, 0.563), (0.563, 0.906)])


def test_letters_align_to_the_phones_they_spell() -> None:
    """Digraphs share their phone, vowel teams share the vowel, silent letters ride along."""
    from avflow_cli.audio.alignment_tokens import align_letters

    def phones(*names: str) -> list[tuple[str, float, float]]:
        return [(n, float(i), float(i + 1)) for i, n in enumerate(names)]

    assert align_letters("CHAIRS", phones("ch", "eh", "r", "z")) == [0, 0, 1, 1, 2, 3]
    assert align_letters("KNEE", phones("n", "iy")) == [0, 0, 1, 1]
    assert align_letters("AXE", phones("ae", "k", "s")) == [0, 1, 2]  # one letter, two phones
    assert align_letters("PAINTED", phones("p", "ey", "n", "t", "ax", "d")) == [0, 1, 1, 2, 3, 4, 5]


def test_bilabial_letters_peak_at_their_phone_onset() -> None:
    """The letter B of "both" peaks on the token frame where flite's b starts (lips shut there)."""
    from avflow_cli.audio.alignment_tokens import letter_spans

    phones = [["pau", 0.0, 0.2], ["b", 0.2, 0.26], ["ow", 0.26, 0.4], ["th", 0.4, 0.5], ["pau", 0.5, 0.7]]
    spans = letter_spans({"text": "both", "phones": phones, "start": 0.0, "end": 0.7})
    assert [c for c, _, _ in spans] == ["B", "O", "T", "H", "|"]
    assert spans[0][1] == pytest.approx(0.2) and spans[1][1] == pytest.approx(0.26)
    logits = at.tokens_from_transcript([{"speaker": "actor", "text": "both", "phones": phones}], 0.7, "actor")
    assert logits.argmax(1)[int(0.2 * K.TOKEN_RATE)] == K.TOKEN_LABELS.index("B")


# --- phone sounds in the posteriors ----------------------------------------------------------
def test_every_phone_frame_carries_its_sound_letters_and_decoding_is_unchanged() -> None:
    logits = at.tokens_from_transcript([turn("The birch canoe, slid!", PHONES)], 2.0, "actor")
    post = np.exp(logits)  # (100, 29)
    assert at.greedy_decode(logits) == "THE BIRCH CANOE SLID"
    k = at._LABEL_INDEX["K"]
    inside_k = [i for i in range(100) if 0.56 <= (i + 0.5) / K.TOKEN_RATE < 0.65]  # the "k" of canoe, spelt C
    assert inside_k and all(post[i, k] > 0.5 * at.SOUND_PROB for i in inside_k)
    silence = [i for i in range(100) if 0.9 <= (i + 0.5) / K.TOKEN_RATE < 1.1 or (i + 0.5) / K.TOKEN_RATE >= 1.6]
    assert np.all(post[silence, k] < 0.01)  # no sound mass in pauses
    np.testing.assert_allclose(post.sum(axis=1), 1.0, atol=1e-5)


def test_sound_profiles_tell_every_phone_apart() -> None:
    rows = {ph: at._sound_row(ph) for ph in at.SOUND_LETTERS}
    assert all(r is not None and abs(r.sum() - 1) < 1e-9 for r in rows.values())
    names = sorted(rows)
    same = [(a, b) for i, a in enumerate(names) for b in names[i + 1:] if np.allclose(rows[a], rows[b])]
    assert same == []
    assert at._sound_row("pau") is None and at._sound_row("xx") is None


def test_words_without_phone_timing_get_dictionary_phones() -> None:
    spans = at.phone_spans({"words": [["cup", 0.0, 0.3], ["qzxv", 0.3, 0.5]]})
    assert [p for p, _, _ in spans] == ["k", "ah", "p"]  # the unlisted word gets none
    assert spans[0][1] == 0.0 and abs(spans[-1][2] - 0.3) < 1e-9


def test_alignment_tokens_of_another_version_are_refused() -> None:
    from avflow_cli.data.token_source import compatible

    v2 = f"alignment ({at.ALIGNMENT_EXTRACTOR})"
    assert compatible(v2, v2) and compatible("alignment (alignment)", "alignment (alignment)")
    assert not compatible("alignment (alignment)", v2)  # made before tokens carried phone sounds


def test_ljspeech_alignment_tokens_equal_prep_tokens(tmp_path: Path, no_wav2vec2: None) -> None:
    folder = _lj_folder(tmp_path / "lj")
    ljspeech_tokens(folder, "alignment")
    item = at.alignment_turn(folder / "alignments" / "a1.json", "The birch canoe slid")
    expected = at.tokens_from_transcript([item], 1.7, None)
    np.testing.assert_array_equal(np.load(folder / "tokens" / "a1.npy"), expected)
    assert json.loads((folder / "tokens" / "source.json").read_text())["extractor"] == at.ALIGNMENT_EXTRACTOR
