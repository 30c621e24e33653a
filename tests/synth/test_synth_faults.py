"""``synth --file`` with bad lines and re-runs, progress on long synthesis, hostile checkpoints."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from avflow_cli.cli.main import app
from avflow_cli.synth import Synthesizer, text_problems

runner = CliRunner()


def _synth_file(model: Path, lines: Path, out: Path, *extra: str) -> object:
    return runner.invoke(app, ["synth", "--file", str(lines), "-o", str(out), "--model", str(model),
                               "--vocoder", "hifigan", "--no-preview", *extra])


def test_text_problems_names_each_bad_text() -> None:
    problems = text_problems(["Hello there.", "###", "Fine. 🙂🙂", "Twelve apples."])
    assert problems[0] is None and problems[3] is None
    assert "'###' has no pronounceable symbols" in problems[1]
    assert "'🙂🙂' has no pronounceable symbols" in problems[2]  # one bad sentence spoils its line


def test_unpronounceable_line_is_named_before_anything_is_spoken(tiny_model: Path, tmp_path: Path) -> None:
    lines = tmp_path / "lines.txt"
    lines.write_text("Hello there.\n\nHow are you?\n### ###\nGood.\n")
    result = _synth_file(tiny_model, lines, tmp_path / "out")
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and f"{lines}: line 4: text '### ###' has no pronounceable symbols" in errors[0]
    assert not (tmp_path / "out").exists()  # no line was synthesized first


def test_rerun_skips_finished_lines(tiny_model: Path, tmp_path: Path) -> None:
    lines, out = tmp_path / "lines.txt", tmp_path / "out"
    lines.write_text("Hello there.\nHow are you?\n")
    first = _synth_file(tiny_model, lines, out)
    assert first.exit_code == 0, first.output
    folders = sorted(p for p in out.iterdir())
    assert [p.name for p in folders] == ["001-hello-there", "002-how-are-you"]
    stamps = {p.name: (p / "speech.wav").stat().st_mtime_ns for p in folders}
    lines.write_text("Hello there.\nHow are you?\nFine, thanks.\n")
    again = _synth_file(tiny_model, lines, out)
    assert again.exit_code == 0, again.output
    assert again.output.count("done before with the same text and settings") == 2
    assert {p.name: (p / "speech.wav").stat().st_mtime_ns for p in folders} == stamps  # not redone
    assert (out / "003-fine-thanks" / "speech.wav").is_file()
    reseeded = _synth_file(tiny_model, lines, out, "--seed", "7")  # other settings: every line is redone
    assert reseeded.exit_code == 0, reseeded.output
    assert "done before with" not in reseeded.output
    assert (out / "001-hello-there" / "speech.wav").stat().st_mtime_ns != stamps["001-hello-there"]


def test_line_folder_collision_with_user_data_is_refused_first(tiny_model: Path, tmp_path: Path) -> None:
    lines, out = tmp_path / "lines.txt", tmp_path / "out"
    lines.write_text("Hello there.\nHow are you?\n")
    (out / "002-how-are-you").mkdir(parents=True)
    (out / "002-how-are-you" / "mine.txt").write_text("x")
    result = _synth_file(tiny_model, lines, out)
    assert result.exit_code == 2 and "holds '002-how-are-you'" in result.output, result.output
    assert "not written by avflow synth" in result.output
    assert sorted(p.name for p in out.iterdir()) == ["002-how-are-you"]  # line 1 was not synthesized either


def test_progress_reports_sentences_steps_and_vocoder(tiny_model: Path) -> None:
    synth = Synthesizer(tiny_model, vocoder="hifigan", device="cpu")
    seen: list[tuple[str, int, int]] = []
    with_progress = synth.synthesize("Hello there. How are you?", steps=5, progress=lambda *a: seen.append(a))
    assert [s for s in seen if s[0] == "text-to-tokens"] == [("text-to-tokens", 1, 2), ("text-to-tokens", 2, 2)]
    assert [s for s in seen if s[0] == "avflow"] == [("avflow", i, 5) for i in range(1, 6)]
    assert seen[-1] == ("vocoder", 1, 1)
    plain = synth.synthesize("Hello there. How are you?", steps=5)
    np.testing.assert_array_equal(with_progress.mel, plain.mel)  # reporting changes nothing


def test_hostile_vocoder_checkpoint_is_refused(tiny_model: Path, tmp_path: Path) -> None:
    class Hostile:
        def __reduce__(self) -> tuple:
            return (open, (str(tmp_path / "created"), "w"))

    torch.save({"generator": Hostile()}, tmp_path / "generator.pth.tar")
    result = runner.invoke(app, ["synth", "Hi.", "-o", str(tmp_path / "out"), "--model", str(tiny_model),
                                 "--vocoder", "hifigan", "--vocoder-checkpoint", str(tmp_path / "generator.pth.tar")])
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "refused" in errors[0] and "weights_only" not in result.output
    assert not (tmp_path / "created").exists() and not (tmp_path / "out").exists()


def test_absurd_numbers_are_one_line_errors(tiny_model: Path, tmp_path: Path) -> None:
    for option, value, message in [("--steps", "99999999999999999999", "--steps must be at most"),
                                   ("--steps", "0", "--steps must be at least 1"),
                                   ("--seed", "99999999999999999999", "--seed must be between 0 and"),
                                   ("--seed", "-1", "--seed must be between 0 and")]:
        result = runner.invoke(app, ["synth", "Hi.", "-o", str(tmp_path / "out"), "--model", str(tiny_model),
                                     option, value])
        assert result.exit_code == 2, result.output
        errors = [line for line in result.output.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and message in errors[0], result.output
        assert not (tmp_path / "out").exists()


def test_non_finite_speech_is_a_one_line_error(tiny_model: Path) -> None:
    from avflow_cli.errors import AvflowError

    synth = Synthesizer(tiny_model, vocoder="hifigan", device="cpu")

    class Diverged:  # what a vocoder gives for a diverged model's mel (exp overflow)
        sample_rate, name = 22050, "stub"

        def __call__(self, mel: torch.Tensor) -> torch.Tensor:
            return torch.full((1, mel.shape[1] * 256), float("inf"))

    synth.vocoder = Diverged()
    with pytest.raises(AvflowError, match="non-finite audio; the model's log-mel spans .* is the model trained"):
        synth.synthesize("Hello there.")
