"""``avflow synth`` never loses a user's data: --file into a user's folder, --force beside user
files, inputs inside -o; and unbounded or undecodable text is refused in one line."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from avflow_cli.checks import MAX_TEXT_CHARS
from avflow_cli.cli.main import app
from avflow_cli.fsutil import OUTPUT_MARKER

runner = CliRunner()


def _synth(model: Path, *args: str) -> object:
    return runner.invoke(app, ["synth", *args, "--model", str(model), "--vocoder", "hifigan", "--no-preview"])


def _one_error(output: str) -> str:
    errors = [line for line in output.splitlines() if line.strip()]
    assert len(errors) == 1 and errors[0].startswith("error:"), output
    return errors[0]


def test_file_mode_refuses_a_users_folder_without_force(tiny_model: Path, tmp_path: Path) -> None:
    lines, out = tmp_path / "lines.txt", tmp_path / "thesis"
    lines.write_text("Hello there.\n")
    out.mkdir()
    (out / "chapter1.tex").write_text("years of work")
    result = _synth(tiny_model, "--file", str(lines), "-o", str(out))
    assert result.exit_code == 2
    assert "chapter1.tex" in _one_error(result.output) and "--force" in result.output
    assert sorted(p.name for p in out.iterdir()) == ["chapter1.tex"]
    forced = _synth(tiny_model, "--file", str(lines), "-o", str(out), "--force")
    assert forced.exit_code == 0, forced.output
    assert (out / "chapter1.tex").read_text() == "years of work"  # --force adds beside, never wipes
    assert (out / "001-hello-there" / "speech.wav").is_file()


def test_force_into_a_users_folder_keeps_their_files(tiny_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep")
    refused = _synth(tiny_model, "Hello there.", "-o", str(out))
    assert refused.exit_code == 2 and sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    result = _synth(tiny_model, "Hello there.", "-o", str(out), "--force")
    assert result.exit_code == 0, result.output
    assert (out / "notes.txt").read_text() == "keep"
    assert {"speech.wav", "motion.npz", "meta.json", OUTPUT_MARKER} <= {p.name for p in out.iterdir()}
    (out / "face.mp4").write_text("the user's render")  # a re-run without --force: its own folder now
    again = _synth(tiny_model, "Hello there.", "-o", str(out), "--seed", "3")
    assert again.exit_code == 0, again.output
    assert (out / "face.mp4").read_text() == "the user's render" and (out / "notes.txt").read_text() == "keep"


def test_file_mode_output_holding_the_text_file_is_refused_even_with_force(tiny_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "work"
    out.mkdir()
    lines = out / "lines.txt"
    lines.write_text("Hello there.\n")
    result = _synth(tiny_model, "--file", str(lines), "-o", str(out), "--force")
    assert result.exit_code == 2 and "which this command reads" in _one_error(result.output)
    assert sorted(p.name for p in out.iterdir()) == ["lines.txt"] and lines.read_text() == "Hello there.\n"


def test_overlong_line_and_text_are_refused_before_loading(tiny_model: Path, tmp_path: Path) -> None:
    lines, out = tmp_path / "lines.txt", tmp_path / "out"
    lines.write_text("Hello there.\n" + "word" * 25_000 + "\n")
    result = _synth(tiny_model, "--file", str(lines), "-o", str(out))
    assert result.exit_code == 2
    assert f"line 2: 100,000 characters; at most {MAX_TEXT_CHARS:,}" in _one_error(result.output)
    single = _synth(tiny_model, "a" * (MAX_TEXT_CHARS + 1), "-o", str(out))
    assert single.exit_code == 2 and "characters; at most" in _one_error(single.output)
    assert not out.exists()


def test_lone_surrogate_is_a_one_line_error(tiny_model: Path, tmp_path: Path) -> None:
    """A shell hands undecodable bytes to Python as lone surrogates (surrogateescape)."""
    result = _synth(tiny_model, "Hello \udcff there.", "-o", str(tmp_path / "out"))
    assert result.exit_code == 2 and "lone surrogate" in _one_error(result.output)
    assert not (tmp_path / "out").exists()


def test_a_participant_recording_inside_the_output_is_never_replaced(tiny_model: Path, tmp_path: Path) -> None:
    """--participant-audio DIR/speech.wav with -o DIR --force would have been overwritten by the
    avatar's speech.wav: the output holds an input, refused even with --force."""
    import numpy as np
    import soundfile as sf

    out = tmp_path / "take"
    out.mkdir()
    sf.write(out / "speech.wav", np.zeros(16000, np.float32), 16000)
    before = (out / "speech.wav").read_bytes()
    result = _synth(tiny_model, "Hello there.", "-o", str(out), "--force", "--participant-audio", str(out / "speech.wav"))
    assert result.exit_code == 2 and "which this command reads" in _one_error(result.output)
    assert (out / "speech.wav").read_bytes() == before


def test_an_overlong_participant_recording_is_refused_from_its_header(tmp_path: Path) -> None:
    import re

    import numpy as np
    import pytest
    import soundfile as sf

    from avflow_cli import checks
    from avflow_cli.errors import AvflowError

    wav = tmp_path / "user.wav"
    sf.write(wav, np.zeros(16000 * 3, np.float32), 16000)
    assert checks.check_recording(wav, "--participant-audio") == 3.0
    with pytest.raises(AvflowError, match=re.escape(f"--participant-audio {wav}: 3 s long; at most 2 s per timeline")):
        checks.check_recording(wav, "--participant-audio", limit=2.0)
    assert checks.recording_seconds(tmp_path / "missing.wav") == 0.0
