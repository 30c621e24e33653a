"""`avflow train token-gain`: every candidate measured by every recogniser, the best stored (ties
to the gain nearest 1), the synthesizer's own gain restored, bad input refused in one line."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from typer.testing import CliRunner

from avflow_cli.cli.main import app
from avflow_cli.errors import AvflowError
from avflow_cli.models.config import AVFlowConfig
from avflow_cli.train.token_gain import GainScore, check_gains, choose_gain, measure_token_gains

runner = CliRunner()


class GainEcho:
    """A synthesizer stand-in whose waveform carries the gain it was asked to speak at."""

    def __init__(self) -> None:
        self.model = SimpleNamespace(config=AVFlowConfig(token_gain=1.0))
        self.spoken: list[tuple[float, int]] = []

    def synthesize(self, text: str, *, seed: int) -> SimpleNamespace:
        self.spoken.append((self.model.config.token_gain, seed))
        return SimpleNamespace(wav=np.full(160, self.model.config.token_gain, np.float32))


def test_each_gain_is_heard_by_each_recogniser_and_the_model_keeps_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    import avflow_cli.metrics.wer as wer

    def hear(wav: np.ndarray, sr: int, backend: str) -> tuple[str, str]:
        gain = float(wav[0])  # "a" hears the sentence only at gain 2; "b" at 2 and 1.5
        good = gain == 2.0 or (backend == "b" and gain == 1.5)
        return ("one two three" if good else "one"), backend

    monkeypatch.setattr(wer, "transcribe_segments", hear)
    synth = GainEcho()
    scores = measure_token_gains(synth, ["one two three", "one two three"], [1.0, 1.5, 2.0], ["a", "b"], samples=2)
    assert [s.gain for s in scores] == [1.0, 1.5, 2.0]
    assert scores[0].wer_by_asr == {"a": pytest.approx(2 / 3, abs=1e-3), "b": pytest.approx(2 / 3, abs=1e-3)}
    assert scores[1].wer_by_asr == {"a": pytest.approx(2 / 3, abs=1e-3), "b": 0.0}
    assert scores[2].wer_by_asr == {"a": 0.0, "b": 0.0}
    assert choose_gain(scores) == 2.0
    assert synth.model.config.token_gain == 1.0  # restored
    assert sorted({seed for _, seed in synth.spoken}) == [0, 1, 1000, 1001]  # sentence i, sample k: i + 1000 k
    assert len(synth.spoken) == 3 * 2 * 2


def test_ties_go_to_the_gain_nearest_one() -> None:
    tie = [GainScore(g, {"a": 0.3}) for g in (0.5, 1.5, 2.0)]
    assert choose_gain(tie) == 0.5  # |1.5 − 1| = |0.5 − 1|: the smaller of the two nearest
    assert choose_gain([GainScore(2.0, {"a": 0.3}), GainScore(1.0, {"a": 0.3})]) == 1.0
    assert choose_gain([GainScore(2.0, {"a": 0.2, "b": 0.4}), GainScore(1.0, {"a": 0.1, "b": 0.6})]) == 2.0  # mean
    with pytest.raises(AvflowError, match="no token gains"):
        choose_gain([])


@pytest.mark.parametrize("gains", [[0.0], [5.0], [float("nan")], []])
def test_gains_out_of_range_are_refused(gains: list[float]) -> None:
    with pytest.raises(AvflowError, match="--gains"):
        check_gains(gains)
    assert check_gains([2, 1, 2]) == [1.0, 2.0]


def _family(tiny_model: Path, tmp_path: Path) -> Path:
    shutil.copytree(tiny_model.parent, tmp_path / "family")
    return tmp_path / "family" / tiny_model.name


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_cli_stores_the_chosen_gain_and_nothing_else(tiny_model: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import avflow_cli.metrics.wer as wer
    from avflow_cli.synth import Synthesizer

    heard_at: list[float] = []
    real_synthesize = Synthesizer.synthesize

    def synthesize(self, text: str, **kw):  # noqa: ANN001, ANN202
        heard_at.append(self.model.config.token_gain)
        return real_synthesize(self, text, **kw)

    # an untrained model says nothing: the recogniser hears the text only at gain 1.5
    monkeypatch.setattr(Synthesizer, "synthesize", synthesize)
    monkeypatch.setattr(wer, "transcribe_segments", lambda wav, sr, backend: ("" if heard_at[-1] != 1.5 else None, backend))
    monkeypatch.setattr(wer, "word_errors", _errors_unless_none(wer.word_errors))
    model = _family(tiny_model, tmp_path)
    weights = _sha(model / "model.safetensors")
    result = runner.invoke(app, ["train", "token-gain", str(model), "--gains", "1,1.5", "--samples", "1",
                                 "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "token gain 1.5, not stored" in result.output
    assert json.loads((model / "config.json").read_text())["model"].get("token_gain", 1.0) == 1.0
    assert not (model / "token_gain.json").exists()
    result = runner.invoke(app, ["train", "token-gain", str(model), "--gains", "1,1.5", "--samples", "1"])
    assert result.exit_code == 0, result.output
    assert json.loads((model / "config.json").read_text())["model"]["token_gain"] == 1.5
    assert _sha(model / "model.safetensors") == weights
    record = json.loads((model / "token_gain.json").read_text())
    assert record["token_gain"] == 1.5 and record["sentences"] == "dev" and record["samples"] == 1
    assert [(r["gain"], r["mean_wer"]) for r in record["scores"]] == [(1.0, 1.0), (1.5, 0.0)]
    assert set(heard_at) == {1.0, 1.5} and len(heard_at) == 2 * 2 * 10  # two runs × two gains × ten dev sentences
    assert Synthesizer(model, vocoder="hifigan", device="cpu").token_gain == 1.5


def _errors_unless_none(word_errors):  # noqa: ANN001, ANN202
    """word_errors(ref, None) = no errors (the fake recogniser "heard it"), else the real count."""
    def count(reference: str, hypothesis: str | None):  # noqa: ANN202
        return word_errors(reference, reference if hypothesis is None else hypothesis)
    return count


@pytest.mark.parametrize("args, message", [
    (["--gains", "1,x"], "--gains takes numbers"),
    (["--gains", "0,2"], "--gains must be in (0, 4]"),
    (["--asr", "nope"], "unknown ASR backend"),
    (["--sentences", "mine"], "--sentences must be dev or test"),
])
def test_cli_bad_input_is_one_line_and_writes_nothing(tiny_model: Path, tmp_path: Path, args: list[str],
                                                      message: str) -> None:
    model = _family(tiny_model, tmp_path)
    before = (model / "config.json").read_text()
    result = runner.invoke(app, ["train", "token-gain", str(model), *args])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert (model / "config.json").read_text() == before


def test_cli_refuses_a_folder_that_is_not_a_model(tmp_path: Path) -> None:
    result = runner.invoke(app, ["train", "token-gain", str(tmp_path)])
    assert result.exit_code == 2, result.output
    assert "not a model directory" in result.output and "Traceback" not in result.output


def test_cli_refuses_a_model_without_text_to_tokens_before_speaking(tiny_model: Path, tmp_path: Path) -> None:
    alone = tmp_path / "alone" / "avflow"
    shutil.copytree(tiny_model, alone)  # no ../t2t beside it and none recorded
    config = json.loads((alone / "config.json").read_text())
    config.get("components", {}).pop("t2t", None)
    (alone / "config.json").write_text(json.dumps(config))
    before = (alone / "config.json").read_text()
    result = runner.invoke(app, ["train", "token-gain", str(alone), "--samples", "1"])
    assert result.exit_code == 2, result.output
    assert "no text-to-tokens model found" in result.output and "Traceback" not in result.output
    assert (alone / "config.json").read_text() == before and not (alone / "token_gain.json").exists()
