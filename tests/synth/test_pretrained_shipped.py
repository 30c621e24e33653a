"""The demo model shipped in the package loads through the default path and is understood by an
ASR (the numbers of avflow_cli/resources/pretrained_demo/README.md, with room for CPU rounding)."""

from __future__ import annotations

from pathlib import Path

import pytest

from avflow_cli import shipped
from avflow_cli import synth as synth_mod


def test_shipped_model_is_intelligible(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from avflow_cli.metrics.probe import corpus_wer, probe_sentences

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(shipped.MODEL_ENV, raising=False)
    synth = synth_mod.Synthesizer(device="cpu")  # the default is the shipped model
    assert synth.model_dir == shipped.shipped_model_dir("pretrained")
    sentences = probe_sentences()[:3]
    results = [synth.synthesize(text, seed=i) for i, text in enumerate(sentences)]
    assert (synth.synthesize(sentences[0], seed=0).wav == results[0].wav).all()  # same seed: same speech
    assert synth.temperature == 0.4 and synth.components["vocoder"] == "student"  # as docs/quality.md measured
    wer = corpus_wer(sentences, [r.wav for r in results], results[0].sample_rate)
    assert wer < 0.45, wer  # all ten sentences over three seed sets: 0.25 (README); three sentences vary more


def test_shipped_model_family_is_complete() -> None:
    root = shipped.shipped_root("pretrained")
    for part in ("avflow", "t2t", "headvae"):
        assert (root / part / "config.json").is_file() and (root / part / "model.safetensors").is_file()
    total = sum(f.stat().st_size for f in root.rglob("*") if f.is_file())
    assert total <= 25 * 2**20  # the package stays small
