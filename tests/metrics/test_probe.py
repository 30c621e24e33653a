"""The intelligibility probe: held-out sentences with exact truth, and its scores."""

from __future__ import annotations

import numpy as np
import pytest

from avflow_cli import constants as K
from avflow_cli.data.demo_corpus import load_sentences
from avflow_cli.metrics.probe import make_probe_items, probe_sentences, speech_lip_f1, token_cer
from avflow_cli.render.demo_avatar import LIP_CLOSED_THRESHOLD


@pytest.fixture(scope="module")
def items():
    return make_probe_items(["Please bring me a cup of hot tea.", "My mother made bread."])


def test_probe_sentences_are_outside_the_demo_corpus() -> None:
    corpus = " ".join(load_sentences()).lower()
    sentences = probe_sentences()
    assert len(sentences) == 10
    assert not any(s.lower().rstrip(".") in corpus for s in sentences)


def test_items_have_aligned_truth(items) -> None:
    for item in items:
        n = len(item.tokens)
        assert item.tokens.shape == (n, K.TOKEN_DIM) and item.lip_distance.shape == (n,) and item.speech.shape == (n,)
        assert abs(len(item.audio) / K.SAMPLE_RATE - n / K.FPS) < 2 / K.FPS
        assert 0.6 < item.speech.mean() < 1.0  # trimmed to speech with short margins and pauses
        closed = item.lip_distance < LIP_CLOSED_THRESHOLD
        assert closed[item.speech].any()  # the bilabials (p, b, m) shut the lips inside speech


def test_scores_are_perfect_on_the_truth_and_poor_on_noise(items) -> None:
    assert token_cer(lambda text, seed: next(i.tokens for i in items if i.text == text), items) == 0.0
    rng = np.random.default_rng(0)
    assert token_cer(lambda text, seed: rng.normal(size=(100, K.TOKEN_DIM)), items) > 0.5
    assert speech_lip_f1(items, [i.lip_distance for i in items], LIP_CLOSED_THRESHOLD) == 1.0
    opened = [np.full_like(i.lip_distance, 10.0) for i in items]
    assert speech_lip_f1(items, opened, LIP_CLOSED_THRESHOLD) == 0.0


@pytest.mark.slow  # ten sentences through both paths, the vocoder and the ASR
def test_probe_model_reports_both_paths(tiny_avatar_model, capsys) -> None:
    """The probe `pipelines/pretrained_demo.sh` prints: every number present and in range (a
    random tiny model speaks gibberish, so its WER is high while the ceiling stays low)."""
    from avflow_cli.metrics import probe

    probe.main([str(tiny_avatar_model)])
    import json

    scores = json.loads(capsys.readouterr().out)
    assert set(scores) == {"temperature", "tokens_wer", "lip_f1_speech", "text_wer", "token_cer", "flite_wer", "flite_vocoded_wer"}
    assert scores["tokens_wer"] > 0.5 and scores["text_wer"] > 0.5
    assert scores["flite_wer"] < 0.3 and 0.0 <= scores["lip_f1_speech"] <= 1.0


def test_probe_main_bad_model_is_one_line(tmp_path, capsys) -> None:
    from avflow_cli.metrics import probe

    with pytest.raises(SystemExit) as exit_info:
        probe.main([str(tmp_path / "absent")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "no AV-Flow model" in err and "\n" not in err
