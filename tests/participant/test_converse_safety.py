"""``avflow converse`` never deletes its dialogue or recordings (even with --force), never wipes a
user's folder, and refuses pauses that are not finite or would need unbounded memory."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from avflow_cli.checks import MAX_PAUSE_SECONDS
from avflow_cli.cli.main import app
from avflow_cli.converse import load_dialogue
from avflow_cli.errors import AvflowError

runner = CliRunner()


def _converse(model: Path, dialogue: Path, out: Path, *extra: str) -> object:
    return runner.invoke(app, ["converse", str(dialogue), "-o", str(out), "--model", str(model), "--vocoder",
                               "griffinlim", "--device", "cpu", "--no-preview", *extra])


def _one_error(res: object) -> str:
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert res.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error:"), res.output
    return lines[0]


@pytest.fixture()
def session(tmp_path: Path, speech_wav: Path) -> Path:
    """A user's folder: the dialogue, their recording and their notes."""
    folder = tmp_path / "session"
    folder.mkdir()
    (folder / "user.wav").write_bytes(speech_wav.read_bytes())
    (folder / "notes.txt").write_text("mine")
    (folder / "d.toml").write_text('[[turns]]\navatar = "Hi."\n\n[[turns]]\nuser = "user.wav"\n')
    return folder


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.mark.parametrize("target", ["the folder", "the dialogue", "the recording"])
def test_force_never_deletes_the_dialogue_or_recordings(plain_model: Path, session: Path, target: str) -> None:
    out = {"the folder": session, "the dialogue": session / "d.toml", "the recording": session / "user.wav"}[target]
    before = _snapshot(session)
    res = _converse(plain_model, session / "d.toml", out, "--force")
    assert "which this command reads" in _one_error(res)
    assert _snapshot(session) == before


def test_force_into_a_users_folder_replaces_only_avflow_files(plain_model: Path, session: Path, tmp_path: Path) -> None:
    out = tmp_path / "theirs"
    out.mkdir()
    (out / "draft.txt").write_text("keep")
    assert "--force" in _one_error(_converse(plain_model, session / "d.toml", out))
    res = _converse(plain_model, session / "d.toml", out, "--force")
    assert res.exit_code == 0, res.output
    assert (out / "draft.txt").read_text() == "keep" and (out / "conversation.wav").is_file()
    assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name]


@pytest.mark.parametrize("pause", ["inf", "nan", "-inf", "1e7", str(MAX_PAUSE_SECONDS + 1)])
def test_non_finite_or_huge_pauses_are_one_line(plain_model: Path, session: Path, pause: str) -> None:
    for text in (f"pause = {pause}\n[[turns]]\navatar = \"Hi.\"\n",
                 f"[[turns]]\navatar = \"Hi.\"\npause = {pause}\n"):
        (session / "d.toml").write_text(text)
        with pytest.raises(AvflowError, match=r"'pause'.*must be a number of seconds in \[0, 60\]"):
            load_dialogue(session / "d.toml")
    out = session.parent / "out"
    assert "'pause'" in _one_error(_converse(plain_model, session / "d.toml", out)) and not out.exists()


def test_pauses_adding_up_beyond_an_hour_are_refused(session: Path) -> None:
    (session / "d.toml").write_text('[[turns]]\navatar = "Hi."\npause = 59\n' * 70)
    with pytest.raises(AvflowError, match="the pauses add up to 4,130 s"):
        load_dialogue(session / "d.toml")


def test_undecodable_text_is_refused(session: Path) -> None:
    (session / "d.yaml").write_text('turns:\n  - avatar: "Hi \\udcff there."\n')
    with pytest.raises(AvflowError, match="turn 1, field 'avatar'.*lone surrogate"):
        load_dialogue(session / "d.yaml")


@pytest.mark.parametrize(("fps", "words"), [(1e-6, "fps 1e-06 is outside"), (float("nan"), "fps nan is outside"),
                                            (1.0, "4,000 frames at 1 fps")])
def test_participant_features_spanning_unbounded_time_are_refused(tmp_path: Path, fps: float, words: str) -> None:
    """Features are resampled onto avflow's timeline: 10 rows at 1e-6 fps would be 10^7 s of it."""
    import numpy as np

    from avflow_cli.participant import read_features_file

    rows = 4_000 if fps == 1.0 else 10
    np.savez(tmp_path / "f.npz", features=np.zeros((rows, 56), np.float32), fps=np.float64(fps))
    with pytest.raises(AvflowError, match=words):
        read_features_file(tmp_path / "f.npz", 56)


def test_damaged_or_pickled_feature_files_are_one_line(tmp_path: Path) -> None:
    import numpy as np

    from avflow_cli.participant import read_features_file

    (tmp_path / "cut.npz").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(AvflowError, match="not a readable .npz file"):
        read_features_file(tmp_path / "cut.npz", 56)
    np.save(tmp_path / "obj.npy", np.array([object()] * 2, dtype=object), allow_pickle=True)
    with pytest.raises(AvflowError, match="holds Python objects"):
        read_features_file(tmp_path / "obj.npy", 56)


def test_recordings_are_bounded_from_their_headers(session: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The user's recordings count toward the conversation's length before any is read whole."""
    import soundfile as sf

    from avflow_cli import converse as C

    seconds = sf.info(str(session / "user.wav")).duration
    monkeypatch.setattr(C, "MAX_TIMELINE_SECONDS", seconds + 0.5)  # the dialogue's pauses (0.6 s) tip it over
    with pytest.raises(AvflowError, match=r"line 5, turn 2, field 'user': the conversation reaches"):
        load_dialogue(session / "d.toml")
    monkeypatch.setattr(C, "MAX_TIMELINE_SECONDS", seconds + 1.0)
    assert [t.speaker for t in load_dialogue(session / "d.toml").turns] == ["avatar", "user"]
