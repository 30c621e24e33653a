"""avflow converse: dialogue parsing (line and field named), the timeline, the outputs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from avflow_cli import constants as K
from avflow_cli.cli.main import app
from avflow_cli.converse import load_dialogue
from avflow_cli.errors import AvflowError

runner = CliRunner()


@pytest.fixture()
def dialogue_dir(tmp_path: Path, speech_wav: Path, face_video) -> Path:
    shutil.copy(speech_wav, tmp_path / "user.wav")
    shutil.copy(face_video[0], tmp_path / "user.mp4")
    return tmp_path


@pytest.mark.parametrize("text, message", [
    ('[[turns]]\navatar = "Hi."\n\n[[turns]]\nuser = "user.wav"\nvidoe = "user.mp4"\n', "line 6, turn 2, field 'vidoe': unknown field"),
    ('[[turns]]\navatar = "Hi."\n\n[[turns]]\nuser = "missing.wav"\n', "line 5, turn 2, field 'user': file not found"),
    ('[[turns]]\navatar = "Hi."\nuser = "user.wav"\n', "line 1, turn 1: needs exactly one of"),
    ('[[turns]]\navatar = ""\n', "line 2, turn 1, field 'avatar': must be non-empty text"),
    ('[[turns]]\navatar = "Hi."\npause = -1\n', "line 3, turn 1, field 'pause'"),
    ('turns = 3\n', "field 'turns'"),
    ('[[turns]\navatar = "x"\n', "not valid TOML"),
])
def test_malformed_toml_names_line_and_field(dialogue_dir: Path, text: str, message: str) -> None:
    path = dialogue_dir / "d.toml"
    path.write_text(text)
    with pytest.raises(AvflowError) as err:
        load_dialogue(path)
    assert message in str(err.value)


def test_yaml_errors_name_lines_too(dialogue_dir: Path) -> None:
    path = dialogue_dir / "d.yaml"
    path.write_text("turns:\n  - avatar: Hi.\n  - user: user.wav\n    chanel: 1\n")
    with pytest.raises(AvflowError, match="line 4, turn 2, field 'chanel'"):
        load_dialogue(path)
    path.write_text("turns:\n  - avatar: [unclosed\n")
    with pytest.raises(AvflowError, match="not valid YAML"):
        load_dialogue(path)
    path.write_text("turns:\n  - avatar: Hi there.\n  - user: user.wav\n    video: user.mp4\n    pause: 0.1\n")
    d = load_dialogue(path)
    assert [t.speaker for t in d.turns] == ["avatar", "user"] and d.turns[1].video.name == "user.mp4"


def test_converse_writes_the_whole_conversation(guided_model: Path, dialogue_dir: Path) -> None:
    path = dialogue_dir / "d.toml"
    path.write_text('seed = 2\npause = 0.2\n[[turns]]\navatar = "Hello there."\n\n[[turns]]\nuser = "user.wav"\n'
                    'video = "user.mp4"\n\n[[turns]]\navatar = "Nice."\n')
    out = dialogue_dir / "out"
    r = runner.invoke(app, ["converse", str(path), "-o", str(out), "--model", str(guided_model), "--vocoder",
                            "griffinlim", "--device", "cpu"])
    assert r.exit_code == 0, r.output
    meta = json.loads((out / "meta.json").read_text())
    motion = np.load(out / "motion.npz")
    T = len(motion["mel"])
    assert [t["speaker"] for t in meta["turns"]] == ["avatar", "user", "avatar"]
    assert meta["token_gain"] == 1.0  # the model's own (config.json model.token_gain), recorded
    spans = motion["turn_frames"]
    assert spans[-1][1] + int(round(0.2 * K.FPS)) == T  # turns back to back with their pauses
    user_len = spans[1][1] - spans[1][0]
    assert abs(user_len - sf.info(str(dialogue_dir / "user.wav")).duration * K.FPS) < 2
    conv, sr = sf.read(str(out / "conversation.wav"))
    speech, _ = sf.read(str(out / "speech.wav"))
    assert conv.shape == (len(speech), 2) and sr == K.SAMPLE_RATE
    a, b = spans[1] * K.HOP_LENGTH
    assert np.abs(conv[a:b, 1]).max() > 0.05 and np.abs(conv[: spans[0][1] * K.HOP_LENGTH, 1]).max() == 0
    assert "pocketsphinx" in meta["participant"]["tokens"]["extractor"] and "dlib" in meta["turns"][1]["visual"]
    assert motion["p_smirk"].shape == (T, K.SMIRK_DIM)
    assert meta["preview"].startswith("demo avatar") and (out / "preview.mp4").stat().st_size > 1000


def test_converse_bad_input_is_one_line_and_writes_nothing(guided_model: Path, dialogue_dir: Path) -> None:
    sf.write(str(dialogue_dir / "tel.wav"), np.random.default_rng(0).normal(0, 0.1, 8000).astype(np.float32), 8000)
    path = dialogue_dir / "d.toml"
    path.write_text('[[turns]]\navatar = "Hi."\n\n[[turns]]\nuser = "tel.wav"\n')
    out = dialogue_dir / "out"
    r = runner.invoke(app, ["converse", str(path), "-o", str(out), "--model", str(guided_model), "--vocoder",
                            "griffinlim", "--device", "cpu"])
    assert r.exit_code == 2 and "turn 2 (line 4), field 'user'" in r.output and "8000 Hz" in r.output
    assert "Traceback" not in r.output and not out.exists()


def test_converse_without_guidance_warns(plain_model: Path, dialogue_dir: Path) -> None:
    path = dialogue_dir / "d.yaml"
    path.write_text("turns:\n  - avatar: Hi.\n  - user: user.wav\n")
    r = runner.invoke(app, ["converse", str(path), "-o", str(dialogue_dir / "o"), "--model", str(plain_model),
                            "--vocoder", "griffinlim", "--device", "cpu", "--no-preview"])
    assert r.exit_code == 0, r.output
    assert "trained without participant guidance" in r.output


def test_dialogue_from_a_recorded_session(tmp_path: Path, speech_wav: Path, face_video) -> None:
    """A session's transcript becomes a sequential dialogue; the user's turns are cut from its audio and video."""
    from avflow_cli.audio.io import resample, write_audio
    from avflow_cli.converse import dialogue_from_session

    session = tmp_path / "session"
    session.mkdir()
    wav, sr = sf.read(str(speech_wav), dtype="float32")
    user = resample(wav, sr, 48000).numpy()
    total = np.zeros((2, int(3.0 * 48000) + len(user)), np.float32)
    total[1, 48000 : 48000 + len(user)] = user
    write_audio(session / "audio.wav", total, 48000)
    end = 1.0 + len(user) / 48000
    (session / "session.json").write_text(json.dumps({"name": "s", "channels": {"actor": 0, "participant": 1}}))
    (session / "transcript.json").write_text(json.dumps({"turns": [
        {"speaker": "actor", "start": 0.1, "end": 0.9, "text": "Hello there."},
        {"speaker": "participant", "start": 1.0, "end": end, "text": "I think that is a really good idea."},
        {"speaker": "actor", "start": end - 0.5, "end": end + 0.2, "text": "Overlap."},  # dropped
        {"speaker": "actor", "start": end + 0.3, "end": end + 1.0, "text": "Great."},
    ]}))
    shutil.copy(face_video[0], session / "participant.mp4")
    path = dialogue_from_session(session, tmp_path / "dlg", max_seconds=10.0)
    d = load_dialogue(path)
    assert [t.speaker for t in d.turns] == ["avatar", "user", "avatar"]
    assert d.turns[0].avatar == "Hello there." and abs(d.turns[0].pause - 0.1) < 1e-6
    cut, csr = sf.read(str(d.turns[1].user), dtype="float32")
    assert abs(len(cut) / csr - (end - 1.0)) < 0.01 and np.abs(cut).max() > 0.05
    assert d.turns[1].video is not None and d.turns[1].video.stat().st_size > 0
