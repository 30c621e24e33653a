"""Participant input: what is read, what is refused (one line, exit 2, nothing written), which path ran."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from avflow_cli import constants as K
from avflow_cli.cli.main import app
from avflow_cli.errors import AvflowError
from avflow_cli.participant import prepare_participant, read_features_file
from avflow_cli.participant.audio import read_participant_audio
from avflow_cli.participant.tokens import choose_extractor, token_kinds

runner = CliRunner()


def _speech(speech_wav: Path) -> tuple[np.ndarray, int]:
    data, sr = sf.read(str(speech_wav), dtype="float32")
    return data, sr


def test_stereo_needs_a_channel_then_reads_it(speech_wav: Path, tmp_path: Path) -> None:
    wav, sr = _speech(speech_wav)
    stereo = tmp_path / "stereo.wav"
    sf.write(str(stereo), np.stack([np.zeros_like(wav), wav], axis=1), sr)
    with pytest.raises(AvflowError, match="--participant-channel"):
        read_participant_audio(stereo)
    one = read_participant_audio(stereo, channel="1")
    np.testing.assert_allclose(one.wav, wav, atol=1e-4)
    assert one.channel_note == "channel 1 of 2"
    mixed = read_participant_audio(stereo, channel="mix")
    np.testing.assert_allclose(mixed.wav, wav / 2, atol=1e-4)
    with pytest.raises(AvflowError, match="channel 0"):  # channel 0 is silent: refused as such
        read_participant_audio(stereo, channel=0)
    with pytest.raises(AvflowError, match="channel 5 does not exist"):
        read_participant_audio(stereo, channel=5)


def test_silent_and_8k_audio_are_refused(tmp_path: Path) -> None:
    silent = tmp_path / "silent.wav"
    sf.write(str(silent), np.zeros(16000, np.float32), 16000)
    with pytest.raises(AvflowError, match="silent"):
        read_participant_audio(silent)
    tel = tmp_path / "tel.wav"
    sf.write(str(tel), 0.3 * np.sin(np.arange(8000) / 8000 * 2 * np.pi * 300).astype(np.float32), 8000)
    with pytest.raises(AvflowError, match="8000 Hz"):
        read_participant_audio(tel)


def test_features_file_width_and_keys(tmp_path: Path) -> None:
    good = tmp_path / "f.npz"
    np.savez(good, features=np.zeros((40, 56), np.float32), fps=25.0)
    feats, fps = read_features_file(good, 56)
    assert feats.shape == (40, 56) and fps == 25.0
    with pytest.raises(AvflowError, match="50 columns; this model reads 56"):
        np.savez(tmp_path / "w.npz", features=np.zeros((40, 50), np.float32))
        read_features_file(tmp_path / "w.npz", 56)
    np.savez(tmp_path / "k.npz", other=np.zeros((4, 56)))
    with pytest.raises(AvflowError, match="no 'features'"):
        read_features_file(tmp_path / "k.npz", 56)


def test_extractor_follows_the_models_token_source() -> None:
    assert token_kinds("alignment (alignment)") == {"alignment"}
    assert choose_extractor("alignment (alignment)")[0] == "pocketsphinx"
    name, note = choose_extractor("alignment (alignment)", "wav2vec2")
    assert name == "wav2vec2" and note.startswith("warning")
    if choose_extractor("", "auto")[0] == "pocketsphinx":  # no Wav2Vec2 weights on this machine
        with pytest.raises(AvflowError, match="trained on Wav2Vec2"):
            choose_extractor("wav2vec2 (wav2vec2_asr_base_960h)")


def test_guided_participant_streams_and_record(guided_model: Path, speech_wav: Path, face_video) -> None:
    from avflow_cli.models.registry import read_config
    from avflow_cli.models.config import AVFlowConfig

    cfg = AVFlowConfig(**read_config(guided_model)["model"])
    part = prepare_participant(cfg, audio=speech_wav, video=face_video[0], demo_trained=True)
    seconds = sf.info(str(speech_wav)).duration
    assert abs(len(part.p_tokens) - seconds * K.FPS) < 2
    assert part.p_smirk.shape == (int(3.0 * K.FPS), K.SMIRK_DIM)
    assert "pocketsphinx" in part.record["tokens"]["extractor"]
    assert "good idea" in part.record["tokens"]["words"]  # recognised, then aligned
    assert "dlib" in part.record["visual"]
    # the recognised words peak in the tokens where they are spoken, blanks elsewhere
    assert (part.p_tokens.argmax(axis=1) != K.TOKEN_BLANK).sum() > 20


def test_no_guidance_model_warns_and_still_speaks(plain_model: Path, speech_wav: Path) -> None:
    from avflow_cli.synth import Synthesizer

    synth = Synthesizer(plain_model, vocoder="griffinlim", device="cpu")
    part = synth.prepare_participant(speech_wav)
    assert part.p_tokens is None and any("without participant guidance" in w for w in part.warnings)
    result = synth.synthesize("Hi there.", participant=part)
    assert result.participant["guidance"].startswith("ignored") and len(result.wav) > 0


def test_short_participant_is_padded_and_avatar_listens_after_speaking(guided_model: Path, speech_wav: Path,
                                                                        tmp_path: Path) -> None:
    from avflow_cli.synth import Synthesizer

    synth = Synthesizer(guided_model, vocoder="griffinlim", device="cpu")
    wav, sr = _speech(speech_wav)
    short = tmp_path / "short.wav"
    sf.write(str(short), wav[: int(0.8 * sr)], sr)
    tokens = np.zeros((200, 29), np.float32)
    res = synth.synthesize_tokens(tokens, participant=synth.prepare_participant(short))
    assert len(res.mel) == 200 and any("shorter than the avatar" in w for w in res.participant["warnings"])
    long = synth.synthesize_tokens(np.zeros((50, 29), np.float32), participant=synth.prepare_participant(speech_wav))
    assert len(long.mel) == int(sf.info(str(speech_wav)).duration * K.FPS)  # listens to the whole recording


@pytest.mark.parametrize("case, message", [
    ("silent", "silent"),
    ("stereo", "--participant-channel"),
    ("8k", "8000 Hz"),
    ("noface", "no face found"),
    ("width", "this model reads 56-d"),
    ("video_only", "need --participant-audio"),
])
def test_cli_bad_participant_input_is_one_line_exit_2(guided_model: Path, speech_wav: Path, tmp_path: Path,
                                                      case: str, message: str) -> None:
    wav, sr = _speech(speech_wav)
    args = ["synth", "Hello.", "-o", str(tmp_path / "out"), "--model", str(guided_model), "--vocoder", "griffinlim",
            "--no-preview", "--device", "cpu"]
    if case == "silent":
        sf.write(str(tmp_path / "a.wav"), np.zeros(sr, np.float32), sr)
        args += ["--participant-audio", str(tmp_path / "a.wav")]
    elif case == "stereo":
        sf.write(str(tmp_path / "a.wav"), np.stack([wav, wav], 1), sr)
        args += ["--participant-audio", str(tmp_path / "a.wav")]
    elif case == "8k":
        sf.write(str(tmp_path / "a.wav"), wav[::2], 8000)
        args += ["--participant-audio", str(tmp_path / "a.wav")]
    elif case == "noface":
        import subprocess

        subprocess.run(["ffmpeg", "-y", "-loglevel", "error", "-f", "lavfi", "-i", "color=c=gray:s=128x128:d=1",
                        "-r", "30", str(tmp_path / "v.mp4")], check=True)
        args += ["--participant-audio", str(speech_wav), "--participant-video", str(tmp_path / "v.mp4")]
    elif case == "width":
        np.savez(tmp_path / "f.npz", features=np.zeros((30, 50), np.float32))
        args += ["--participant-audio", str(speech_wav), "--participant-features", str(tmp_path / "f.npz")]
    elif case == "video_only":
        args += ["--participant-video", str(tmp_path / "v.mp4")]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert sum(line.startswith("error:") for line in result.output.splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_cli_meta_says_which_participant_path_ran(guided_model: Path, speech_wav: Path, face_video, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = runner.invoke(app, ["synth", "Hello.", "-o", str(out), "--model", str(guided_model), "--vocoder",
                                 "griffinlim", "--no-preview", "--device", "cpu", "--participant-audio", str(speech_wav),
                                 "--participant-video", str(face_video[0])])
    assert result.exit_code == 0, result.output
    meta = json.loads((out / "meta.json").read_text())["participant"]
    assert "pocketsphinx" in meta["tokens"]["extractor"] and "dlib" in meta["visual"]
    assert "participant tokens: pocketsphinx" in result.output


def test_pocketsphinx_tokens_ignore_silence_and_find_speech(speech_wav: Path) -> None:
    """The recogniser's language model fills silence with words; the VAD gate keeps them out."""
    from avflow_cli.audio.alignment_tokens import greedy_decode
    from avflow_cli.participant.tokens import pocketsphinx_tokens

    logits, words = pocketsphinx_tokens(np.zeros(16000, np.float32), 16000)
    assert words == [] and (logits.argmax(axis=1) == K.TOKEN_BLANK).all()
    wav, sr = _speech(speech_wav)
    padded = np.concatenate([np.zeros(sr, np.float32), wav])  # 1 s of silence first
    logits, words = pocketsphinx_tokens(padded, sr)
    assert words and words[0][1] >= 1.0  # nothing placed in the silence
    said = set(greedy_decode(logits).lower().split())
    assert len(said & {"i", "think", "that", "really", "good", "idea", "tell", "me", "more"}) >= 6
