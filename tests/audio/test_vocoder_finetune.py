"""Vocoder fine-tuning options of `avflow train vocoder`: speech targets, --init, GTA pairs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from avflow_cli.train.vocoder import DistillSettings, build_gta_pairs, build_pairs, load_gta_model, train_student
from avflow_cli.audio.io import resample
from avflow_cli.audio.student_vocoder import StudentConfig, StudentGenerator, load_student, save_student
from avflow_cli.constants import HOP_LENGTH, SAMPLE_RATE
from avflow_cli.errors import AvflowError, InputFileError

SMALL = StudentConfig(channels=32, intermediate=64, blocks=2)


def test_speech_targets_are_the_speech_itself(wav_folder: Path, tmp_path: Path) -> None:
    paths = build_pairs(tmp_path, None, wav_folder, 1, lambda _l: None, targets="speech")  # no teacher needed
    for path, wav_path in zip(paths, sorted(wav_folder.glob("*.wav"))):
        with np.load(path) as z:
            mel, wav = z["mel"], z["wav"]
        speech, rate = sf.read(wav_path, dtype="float32")
        speech = resample(speech, rate, SAMPLE_RATE).numpy()  # the command works at the vocoder's rate
        assert wav.shape == (mel.shape[0] * HOP_LENGTH,)  # the samples its mel frames vocode to
        np.testing.assert_allclose(wav, speech[: len(wav)], atol=1e-6)


def test_speech_targets_refuse_mel_only_data(tmp_path: Path) -> None:
    (tmp_path / "mels").mkdir()
    np.save(tmp_path / "mels" / "a.npy", np.zeros((20, 80), np.float32))
    with pytest.raises(AvflowError, match="needs .wav files"):
        build_pairs(tmp_path / "run", None, tmp_path / "mels", 1, lambda _l: None, targets="speech")


def test_init_fine_tunes_the_given_student(wav_folder: Path, tmp_path: Path) -> None:
    torch.manual_seed(1)
    save_student(StudentGenerator(SMALL), tmp_path / "start", half=False)
    start = load_student(tmp_path / "start")
    settings = DistillSettings(steps=1, batch=2, segment=8, lr=1e-12, lr_final=1e-12, save_every=100, log_every=1)
    # the init's architecture wins over the (default, larger) config argument
    train_student(tmp_path / "run", data=wav_folder, targets="speech", init=tmp_path / "start", settings=settings,
                  log=lambda _l: None)
    tuned = load_student(tmp_path / "run" / "student")
    assert tuned.cfg == SMALL
    for (name, a), b in zip(start.state_dict().items(), tuned.state_dict().values()):
        torch.testing.assert_close(a, b, atol=2e-3, rtol=2e-3, msg=name)  # one step at lr 1e-12 (fp16 save)
    with pytest.raises(InputFileError, match="not found"):
        train_student(tmp_path / "run2", data=wav_folder, init=tmp_path / "missing", settings=settings)
    assert not (tmp_path / "run2").exists()  # a bad --init fails before anything is written


def _tiny_avflow(folder: Path, token_source: str) -> Path:
    from avflow_cli.models.avflow import AVFlow
    from avflow_cli.models.config import AVFlowConfig
    from avflow_cli.models.normalize import Normalizer, model_streams
    from avflow_cli.models.registry import save_model_dir

    torch.manual_seed(0)
    cfg = AVFlowConfig(face_dim=4, d_model=16, hidden_dim=16, heads=2, depth=1, steps=2, token_source=token_source)
    dims = {"face": 4, "head": cfg.head_dim, "mel": cfg.mel_dim, "tokens": cfg.token_dim}
    norm = Normalizer.identity({k: dims[k] for k in model_streams(cfg)})
    save_model_dir(folder, "avflow", cfg, AVFlow(cfg).state_dict(), norm.to_json(), preset="tiny")
    return folder


def test_gta_pairs_pair_the_models_mel_with_the_speech_its_tokens_came_from(tmp_path: Path) -> None:
    from avflow_cli.audio.alignment_tokens import ALIGNMENT_EXTRACTOR
    from avflow_cli.train.vocoder import GTA_TEMPERATURES, split_harvard_sentences
    from avflow_cli.data.token_source import describe
    from avflow_cli.metrics.probe import make_probe_items

    model = load_gta_model(_tiny_avflow(tmp_path / "m", describe("alignment", ALIGNMENT_EXTRACTOR)))
    paths = build_gta_pairs(tmp_path / "run", model, 2, lambda _l: None)
    assert len(paths) == 2 * len(GTA_TEMPERATURES)
    item = make_probe_items(split_harvard_sentences()[0][:1])[0]
    with np.load(paths[0]) as z0, np.load(paths[1]) as z1:
        assert z0["mel"].shape == (len(item.tokens), 80)  # one mel frame per token frame
        np.testing.assert_allclose(z0["wav"], item.audio[: len(z0["wav"])], atol=1e-6)  # the speech itself
        assert not np.allclose(z0["mel"], z1["mel"])  # the two temperatures/seeds differ
    stamp = paths[0].stat().st_mtime_ns
    build_gta_pairs(tmp_path / "run", model, 2, lambda _l: None)  # a re-run reuses what is there
    assert paths[0].stat().st_mtime_ns == stamp
    other = _tiny_avflow(tmp_path / "w2v", describe("wav2vec2", "facebook/wav2vec2-base-960h"))
    with pytest.raises(AvflowError, match="GTA pairs are made from"):
        train_student(tmp_path / "run2", targets="speech", gta_model=other, gta_sentences=1, log=lambda _l: None)
    assert not (tmp_path / "run2").exists()  # refused before any data is made


def test_gta_pairs_of_recordings_pair_the_models_mel_with_each_recording(wav_folder: Path, tmp_path: Path) -> None:
    """--gta-tokens: a real voice's own recordings, each with its alignment tokens, become GTA pairs."""
    from avflow_cli.audio.alignment_tokens import ALIGNMENT_EXTRACTOR
    from avflow_cli.audio.mel import log_mel
    from avflow_cli.constants import TOKEN_DIM, TOKEN_RATE
    from avflow_cli.data.token_source import describe
    from avflow_cli.train.vocoder import GTA_TEMPERATURES, build_recording_gta_pairs

    tokens = tmp_path / "tokens"
    tokens.mkdir()
    rng = np.random.default_rng(0)
    for wav in sorted(wav_folder.glob("*.wav")):
        seconds = sf.info(wav).duration
        np.save(tokens / f"{wav.stem}.npy", rng.standard_normal((round(seconds * TOKEN_RATE), TOKEN_DIM)).astype(np.float32))
    np.save(tokens / "no_recording.npy", np.zeros((10, TOKEN_DIM), np.float32))
    model = load_gta_model(_tiny_avflow(tmp_path / "m", describe("alignment", ALIGNMENT_EXTRACTOR)))
    lines: list[str] = []
    paths = build_recording_gta_pairs(tmp_path / "run", model, tokens, wav_folder, 0, lines.append)
    assert len(paths) == 2 * len(GTA_TEMPERATURES)  # both recordings, each at every temperature
    assert any("1 token files have no recording" in line for line in lines)  # counted, never silently dropped
    speech, rate = sf.read(wav_folder / "utt0.wav", dtype="float32")
    speech = resample(speech, rate, SAMPLE_RATE)
    frames = log_mel(speech).shape[0]
    with np.load(paths[0]) as z0, np.load(paths[1]) as z1:
        assert z0["mel"].shape == (frames, 80)  # as long as the recording's own mel: the pair is aligned
        np.testing.assert_allclose(z0["wav"], speech.numpy()[: frames * HOP_LENGTH], atol=1e-6)  # the recording
        assert not np.allclose(z0["mel"], z1["mel"])  # two temperatures/seeds
    assert len(build_recording_gta_pairs(tmp_path / "run", model, tokens, wav_folder, 1, lambda _l: None)) == len(GTA_TEMPERATURES)
    with pytest.raises(AvflowError, match="no token file has a recording"):
        build_recording_gta_pairs(tmp_path / "run3", model, tokens, tmp_path, 0, lambda _l: None)
    with pytest.raises(AvflowError, match="no token file has a recording"):
        train_student(tmp_path / "run4", data=tmp_path / "tokens", targets="speech", gta_model=tmp_path / "m",
                      gta_tokens=tokens, config=SMALL, log=lambda _l: None)
    assert not (tmp_path / "run3").exists() and not (tmp_path / "run4").exists()  # refused before writing
    settings = DistillSettings(steps=1, batch=2, segment=8, save_every=100, log_every=1)
    summary = train_student(tmp_path / "run2", data=wav_folder, targets="speech", gta_model=tmp_path / "m",
                            gta_tokens=tokens, config=SMALL, settings=settings, log=lambda _l: None)
    assert summary["pairs"] == 2 + 2 * len(GTA_TEMPERATURES)  # the recordings' own mels + their GTA mels


@pytest.mark.parametrize("args, message", [
    (["--gta-sentences", "3"], "--gta-sentences needs --gta-model"),
    (["--targets", "mimic"], "--targets must be one of"),
    (["--gta-model", "/nowhere/model", "--gta-sentences", "2"], "no AV-Flow model here"),
    (["--gta-tokens", "/nowhere/tokens"], "--gta-tokens needs --gta-model"),
    (["--gta-model", "pretrained", "--gta-tokens", "/nowhere/tokens"], "--gta-tokens needs --data"),
    (["--gta-model", "pretrained", "--gta-sentences", "-1"], "--gta-sentences must be ≥ 0"),
])
def test_cli_refuses_bad_fine_tune_options(tmp_path: Path, args: list[str], message: str) -> None:
    res = subprocess.run([sys.executable, "-m", "avflow_cli.cli.main", "train", "vocoder", "--out", str(tmp_path / "v"),
                          "--steps", "1", *args], capture_output=True, text=True, timeout=300)
    assert res.returncode == 2 and message in (res.stdout + res.stderr), res.stdout + res.stderr
    assert "Traceback" not in res.stderr and not (tmp_path / "v").exists()
