"""Synthesizer.stream (exact equals synthesize_tokens), avflow synth --stream, and the live loop."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from typer.testing import CliRunner

from avflow_cli import constants as K
from avflow_cli.cli.main import app

runner = CliRunner()


@pytest.fixture(scope="module")
def synth(guided_model: Path):
    from avflow_cli.synth import Synthesizer

    return Synthesizer(guided_model, vocoder="hifigan", device="cpu")


def test_exact_stream_equals_offline(synth, speech_wav: Path) -> None:
    part = synth.prepare_participant(speech_wav)
    tokens = np.random.default_rng(0).normal(size=(120, 29)).astype(np.float32)
    offline = synth.synthesize_tokens(tokens, participant=part, seed=4)
    chunks = list(synth.stream(tokens=tokens, participant=part, seed=4, schedule="exact", chunk_frames=24))
    assert len(chunks) > 3 and [c.start for c in chunks if c.frames] == sorted(c.start for c in chunks if c.frames)
    for key in ("mel", "face", "head_latent"):
        got = np.concatenate([getattr(c, key) for c in chunks])
        assert np.abs(got - getattr(offline, key)).max() <= 1e-5, key
    poses = np.concatenate([c.head_pose for c in chunks if c.head_pose is not None])
    assert np.abs(poses - offline.head_pose).max() <= 1e-5
    with torch.inference_mode():
        raw = synth.vocoder(torch.as_tensor(offline.mel)[None])[0].numpy()  # before peak normalisation
    wav = np.concatenate([c.wav for c in chunks])
    assert wav.shape == raw.shape and np.abs(wav - raw).max() < 1e-4
    st = synth.last_stream
    assert st.first_audio_s is not None and st.first_audio_s <= st.total_s and st.frames == len(offline.mel)


def test_low_latency_stream_emits_earlier_and_stays_close(synth) -> None:
    tokens = np.random.default_rng(1).normal(size=(160, 29)).astype(np.float32)
    offline = synth.synthesize_tokens(tokens, seed=2)
    chunks = list(synth.stream(tokens=tokens, seed=2, schedule="low-latency", chunk_frames=16, lookahead=4))
    mel = np.concatenate([c.mel for c in chunks])
    assert mel.shape == offline.mel.shape
    assert np.abs(mel - offline.mel).mean() < 0.1 * np.abs(offline.mel - offline.mel.mean()).mean()
    first = next(c for c in chunks if c.frames)
    assert first.input_frames <= 16 + 4  # needed only chunk + look-ahead frames of input


def test_cli_stream_writes_and_reports_first_audio(guided_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    r = runner.invoke(app, ["synth", "Hello there.", "-o", str(out), "--model", str(guided_model), "--vocoder",
                            "griffinlim", "--device", "cpu", "--stream", "--schedule", "low-latency", "--chunk-frames", "8"])
    assert r.exit_code == 0, r.output
    assert "first audio after" in r.output
    meta = json.loads((out / "meta.json").read_text())
    assert meta["stream"]["schedule"] == "low-latency" and meta["stream"]["time_to_first_audio_s"] > 0
    wav, sr = sf.read(str(out / "speech.wav"))
    motion = np.load(out / "motion.npz")
    assert sr == K.SAMPLE_RATE and len(wav) == motion["mel"].shape[0] * K.HOP_LENGTH


def test_listen_reacts_to_speech_within_its_latency(synth, speech_wav: Path) -> None:
    """Feed real speech in 100 ms chunks, and the same length of silence: the avatar's output
    departs from its silent-input output after the speech starts, in a chunk emitted no later than
    ``latency_s`` of input after the first frame it changes."""
    wav, sr = sf.read(str(speech_wav), dtype="float32")
    step = sr // 10

    def run(audio: np.ndarray) -> tuple[list, float]:
        session = synth.listen_session(sample_rate=sr, seed=3, chunk=8, lookahead=4)
        out = []
        for a in range(0, len(audio), step):
            for chunk in session.push(audio[a : a + step]):
                out.append((chunk, (a + len(audio[a : a + step])) / sr))  # input time when emitted
        out += [(c, len(audio) / sr) for c in session.close()]
        return out, session.latency_s

    spoken, latency = run(wav)
    silent, _ = run(np.zeros_like(wav))
    face_s = np.concatenate([c.face for c, _ in spoken])
    face_q = np.concatenate([c.face for c, _ in silent])
    assert face_s.shape == face_q.shape
    diff = np.abs(face_s - face_q).max(axis=1)  # (T,)
    onset = int(np.argmax(np.abs(wav) > 0.02) / sr * K.FPS)  # first loud sample, in frames
    changed = np.flatnonzero(diff > 1e-4)
    assert len(changed) > 0.3 * len(diff), "the avatar did not react to the user's speech"
    first = int(changed[0])
    # nothing changes long before the user speaks: the look-ahead (4) plus the recognition segmentation's
    # word start, which the incremental recogniser does not re-time by forced alignment (~50 ms early)
    assert first >= onset - 12
    emitted_at = next(t for c, t in spoken if c.start <= first < c.start + c.frames)
    assert emitted_at - first / K.FPS <= latency + 1e-6
    assert latency < 1.5  # the declared bound is a usable live latency
