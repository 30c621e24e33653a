"""The frozen final test set (issue 22): at least 30 sentences, unchanged since its date, and no
sentence or five-word run shared with any text the project trains on."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import pytest

from avflow_cli.data.demo_corpus import load_backchannels, load_sentences
from avflow_cli.data.synthetic_ljspeech import WORDS
from avflow_cli.demo import BUDGETS
from avflow_cli.metrics import sentence_sets as S
from avflow_cli.metrics.probe import probe_sentences
from avflow_cli.shipped import RESOURCES

ASTERISK_TEXTS = "asterisk/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz"


def shipped_t2t_texts() -> list[str]:
    """The training texts every shipped text-to-tokens model recorded (its phonemised cache's keys)."""
    texts = []
    for cache in sorted(RESOURCES.glob("*/t2t/text_ids.json")):
        texts += list(json.loads(cache.read_text())["ids"])
    return texts


def test_test_set_is_frozen_and_large_enough() -> None:
    test = S.sentence_set("test")
    assert len(test) >= 30 and len({S.normalise(t) for t in test}) == len(test)
    header = (RESOURCES / S.SETS["test"]).read_text(encoding="utf-8").splitlines()[0]
    assert f"FROZEN {S.TEST_FROZEN}" in header and "Never tune on it" in header
    assert S.sentences_sha256(test) == S.TEST_SHA256, "the frozen test set changed: write a new file with a new date"
    assert probe_sentences("test") == test and probe_sentences() == S.sentence_set("dev") and len(probe_sentences()) == 10


def test_no_overlap_with_training_texts() -> None:
    training = load_sentences() + [text for text, _ in load_backchannels()] + S.sentence_set("dev")
    training += shipped_t2t_texts() + [budget.text for budget in BUDGETS.values()]
    assert len(shipped_t2t_texts()) >= 300  # the shipped t2t's cache was found: the check is not vacuous
    assert S.overlaps(S.sentence_set("test"), training) == []
    assert S.vocabulary_runs(S.sentence_set("test"), WORDS) == []  # data/synthetic_ljspeech's random sentences


def test_overlap_rule_catches_sentences_and_runs() -> None:
    training = ["The birch canoe slid on the smooth planks.", "Please enter your password followed by the pound key."]
    found = S.overlaps(["the BIRCH canoe, slid on the smooth planks!", "Then enter your password followed by a pin.",
                        "A sentence of its own."], training)
    assert len(found) == 2 and "is a training sentence" in found[0] and "'enter your password followed by'" in found[1]
    assert S.vocabulary_runs(["The big red cat sat on a mat today."], WORDS)  # six generator words in a row
    with pytest.raises(ValueError, match="unknown sentence set"):
        S.sentence_set("train")


@pytest.mark.real_data
def test_no_overlap_with_the_asterisk_prompts() -> None:
    """The real-voice model's training texts (the Asterisk core prompts)."""
    root = Path(os.environ.get("AVFLOW_REAL_DATA") or Path(__file__).resolve().parents[2] / "real_data")
    path = root / ASTERISK_TEXTS
    if not path.is_file():
        pytest.skip(f"{path} not found: run `make real-data`")
    with gzip.open(path, "rt", encoding="utf-8", errors="replace") as f:
        prompts = [line.partition(":")[2].strip() for line in f if ":" in line and not line.startswith(";")]
    assert len(prompts) > 500
    assert S.overlaps(S.sentence_set("test"), prompts) == []
