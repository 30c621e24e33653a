"""`prep tokens` on sessions: the auto source order and its errors."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from avflow_cli import constants as K
from avflow_cli.audio.alignment_tokens import greedy_decode
from avflow_cli.cli.main import app
from avflow_cli.errors import MissingCheckpointError

runner = CliRunner()
CKPT = "wav2vec2_fairseq_base_ls960_asr_ls960.pth"


def fake_asr(monkeypatch: pytest.MonkeyPatch, present: bool) -> list:
    calls: list = []

    class W2V:
        name = "fake-wav2vec2"

        def __init__(self, checkpoint=None, device="cpu"):
            if not present:
                raise MissingCheckpointError(f"Wav2Vec2 weights not found: put {CKPT} in ~/.cache/avflow/checkpoints")

        def logits(self, wav, sr):
            calls.append((len(wav), sr))
            return np.ones((int(len(wav) / sr * K.TOKEN_RATE), K.TOKEN_DIM), np.float32)

    from avflow_cli.data import prep

    prep._wav2vec2.cache_clear()
    monkeypatch.setitem(sys.modules, "avflow_cli.audio.asr_tokens", types.SimpleNamespace(Wav2Vec2Tokens=W2V))
    return calls


def test_auto_falls_back_to_alignment(session: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_asr(monkeypatch, present=False)
    out = tmp_path / "out"
    result = runner.invoke(app, ["prep", "tokens", str(session), str(out)])
    assert result.exit_code == 0, result.output
    work = out / "sessions" / "s0"
    assert json.loads((work / "tokens.json").read_text())["source"] == "alignment"
    assert greedy_decode(np.load(work / "tokens.npy")) == "THE BIRCH CANOE SLID ON THE SMOOTH PLANKS GLUE THE SHEET TO THE DARK BLUE BACKGROUND"
    assert greedy_decode(np.load(work / "p_tokens.npy")) == "YEAH RIGHT"


def test_auto_prefers_wav2vec2_when_weights_exist(session: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = fake_asr(monkeypatch, present=True)
    out = tmp_path / "out"
    assert runner.invoke(app, ["prep", "tokens", str(session), str(out)]).exit_code == 0
    assert json.loads((out / "sessions" / "s0" / "tokens.json").read_text())["source"] == "wav2vec2"
    assert len(calls) == 2 and calls[0][1] == 48000  # actor and participant channels (VAD-cleaned)
    assert (out / "sessions" / "s0" / "actor.wav").is_file()


def test_auto_prefers_precomputed(session: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_asr(monkeypatch, present=True)
    import soundfile as sf

    n = int(sf.info(str(session / "audio.wav")).duration * K.TOKEN_RATE)
    pre = np.random.default_rng(0).normal(size=(2, n, K.TOKEN_DIM)).astype(np.float32)
    np.save(session / "tokens_actor.npy", pre[0])
    np.save(session / "tokens_participant.npy", pre[1:])  # (1, N, 29) as the release writes
    out = tmp_path / "out"
    result = runner.invoke(app, ["prep", "tokens", str(session), str(out)])
    assert result.exit_code == 0, result.output
    np.testing.assert_array_equal(np.load(out / "sessions" / "s0" / "p_tokens.npy"), pre[1])


def test_no_source_names_the_checkpoint(session: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_asr(monkeypatch, present=False)
    turns = json.loads((session / "transcript.json").read_text())["turns"]
    (session / "transcript.json").write_text(json.dumps({"turns": [{k: v for k, v in t.items() if k != "phones"} for t in turns]}))
    out = tmp_path / "out"
    result = runner.invoke(app, ["prep", "tokens", str(session), str(out)])
    assert result.exit_code == 2 and CKPT in result.output and "phone timing" in result.output
    assert not out.exists()
    result = runner.invoke(app, ["prep", "tokens", str(session), str(out), "--source", "wav2vec2"])
    assert result.exit_code == 2 and CKPT in result.output


def test_real_wav2vec2_extractor_with_tiny_random_model(session: Path, tmp_path: Path) -> None:
    """The audio front end's Wav2Vec2Tokens (a tiny random model of the same architecture)."""
    import soundfile as sf
    import torch
    from torchaudio.models import wav2vec2_model

    from avflow_cli.audio import asr_tokens
    from avflow_cli.data import prep

    torch.manual_seed(0)
    conv = [(32, 10, 5)] + [(32, 3, 2)] * 4 + [(32, 2, 2)] * 2  # same strides as base: 320 samples per frame
    tiny = wav2vec2_model(
        extractor_mode="group_norm", extractor_conv_layer_config=conv, extractor_conv_bias=False,
        encoder_embed_dim=32, encoder_projection_dropout=0.0, encoder_pos_conv_kernel=16, encoder_pos_conv_groups=2,
        encoder_num_layers=1, encoder_num_heads=2, encoder_attention_dropout=0.0, encoder_ff_interm_features=64,
        encoder_ff_interm_dropout=0.0, encoder_dropout=0.0, encoder_layer_norm_first=False, encoder_layer_drop=0.0,
        aux_num_out=K.TOKEN_DIM,
    )
    extractor = asr_tokens.Wav2Vec2Tokens(model=tiny)
    s = prep.find_sessions(session)[0]
    done = prep.stage_tokens(s, tmp_path / "out", extractor=extractor)
    assert json.loads(done.read_text())["source"] == "wav2vec2"
    tokens = np.load(tmp_path / "out" / "sessions" / "s0" / "tokens.npy")
    seconds = sf.info(str(session / "audio.wav")).duration
    assert tokens.shape[1] == K.TOKEN_DIM and abs(len(tokens) - seconds * K.TOKEN_RATE) <= 2
    assert np.load(tmp_path / "out" / "sessions" / "s0" / "p_tokens.npy").shape == tokens.shape
