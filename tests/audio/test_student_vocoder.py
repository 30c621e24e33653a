"""The light iSTFT student vocoder: exact iSTFT, loading, selection by `auto`, distillation and resume."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from avflow_cli.audio import student_vocoder as sv
from avflow_cli.train.vocoder import DistillSettings, distill_loss, train_student
from avflow_cli.audio.student_vocoder import StudentConfig, StudentGenerator, istft_same, load_student, save_student
from avflow_cli.audio.vocoder import NeuralVocoder, load_vocoder
from avflow_cli.constants import HOP_LENGTH, MEL_PAD, N_FFT, SAMPLE_RATE
from avflow_cli.errors import AvflowError, InputFileError

SMALL = StudentConfig(channels=32, intermediate=64, blocks=2)


def test_istft_inverts_the_mel_recipe_stft() -> None:
    x = torch.randn(2, HOP_LENGTH * 40)
    padded = F.pad(x[:, None], (MEL_PAD, MEL_PAD), mode="reflect")[:, 0]
    window = torch.hann_window(N_FFT, periodic=True)
    spec = torch.stft(padded, N_FFT, HOP_LENGTH, N_FFT, window, center=False, return_complex=True)  # (2, 513, 40)
    y = istft_same(spec, N_FFT, HOP_LENGTH, window)
    assert y.shape == x.shape  # T frames → T · hop samples, aligned with the analysis frames
    torch.testing.assert_close(y, x, atol=1e-5, rtol=0)


def test_generator_shape_range_and_chunking_equal_one_pass() -> None:
    torch.manual_seed(0)
    gen = StudentGenerator(SMALL).eval()
    mel = torch.randn(1, 300, 80) - 4
    one = NeuralVocoder(gen, "student", chunk_frames=None)(mel)
    chunked = NeuralVocoder(gen, "student", chunk_frames=64)(mel)
    assert one.shape == (1, 300 * HOP_LENGTH) and one.abs().max() <= 1.0
    torch.testing.assert_close(chunked, one, atol=1e-5, rtol=0)


def test_save_load_round_trip_and_clear_errors(tmp_path: Path) -> None:
    torch.manual_seed(0)
    gen = StudentGenerator(SMALL).eval()
    save_student(gen, tmp_path / "s")
    loaded = load_student(tmp_path / "s")
    assert loaded.cfg == SMALL and not any(p.requires_grad for p in loaded.parameters())
    for k, v in gen.state_dict().items():  # stored in fp16: equal to fp16 rounding
        torch.testing.assert_close(loaded.state_dict()[k], v.half().float())
    cfg = json.loads((tmp_path / "s" / "config.json").read_text())
    (tmp_path / "s" / "config.json").write_text(json.dumps({**cfg, "channels": 48}))
    with pytest.raises(InputFileError, match="do not match config.json"):
        load_student(tmp_path / "s")
    (tmp_path / "s" / "config.json").write_text(json.dumps({**cfg, "hop": 128}))
    with pytest.raises(InputFileError, match="another STFT/mel recipe"):
        load_student(tmp_path / "s")
    (tmp_path / "s" / "config.json").write_text(json.dumps({"upsample_rates": [8, 8, 2, 2]}))
    with pytest.raises(InputFileError, match="not a student vocoder config"):
        load_student(tmp_path / "s")
    with pytest.raises(InputFileError, match="not found"):
        load_student(tmp_path / "missing")


def test_auto_uses_a_shipped_student_only_when_it_met_the_bar(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AVFLOW_CHECKPOINTS", str(tmp_path / "none"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    shipped = tmp_path / "shipped"
    monkeypatch.setattr(sv, "shipped_student_dir", lambda: shipped)
    with pytest.raises(AvflowError, match="no student vocoder ships"):
        load_vocoder("student")
    assert load_vocoder("auto").name == "hifigan-universal"
    save_student(StudentGenerator(SMALL), shipped)
    assert load_vocoder("auto").name == "hifigan-universal"  # never measured: not used by auto
    (shipped / sv.QUALITY_FILE).write_text(json.dumps({"passed": False, "wer_teacher": 0.2, "wer_student": 0.4}))
    assert load_vocoder("auto").name == "hifigan-universal"
    (shipped / sv.QUALITY_FILE).write_text(json.dumps({"passed": True, "wer_teacher": 0.2, "wer_student": 0.22}))
    voc = load_vocoder("auto")
    assert voc.name == "student" and voc(torch.randn(20, 80) - 4).shape == (1, 20 * HOP_LENGTH)
    assert load_vocoder("student").name == "student"
    assert load_vocoder("student", checkpoint=shipped).name == "student:shipped"


def test_loss_is_zero_for_the_teacher_itself_and_positive_otherwise() -> None:
    t = torch.randn(2, HOP_LENGTH * 16) * 0.1
    assert float(distill_loss(t, t)["total"]) < 1e-4
    terms = distill_loss(t * 0.5, t)
    assert all(float(terms[k]) > 0 for k in ("sc", "mag", "mel", "cplx"))


def test_distillation_learns_and_resumes_on_the_same_curve(wav_folder: Path, tmp_path: Path) -> None:
    settings = DistillSettings(steps=8, batch=2, segment=8, lr=3e-3, save_every=100, log_every=1)
    ref = tmp_path / "ref"
    train_student(ref, data=wav_folder, settings=settings, config=SMALL, log=lambda _l: None)
    curve = [float(line.split("\t")[2].split("=")[1]) for line in (ref / "train_log.tsv").read_text().splitlines()]
    assert len(curve) == 8 and np.mean(curve[-2:]) < np.mean(curve[:2])
    assert load_student(ref / "student").cfg == SMALL
    assert len(list((ref / "data").glob("*.npz"))) == 2  # (mel, teacher audio) pairs, kept for a resume

    run = tmp_path / "run"
    first = train_student(run, data=wav_folder, settings=settings, config=SMALL, log=lambda _l: None, stop_after=3)
    assert first["step"] == 3 and not first["finished"]
    with pytest.raises(AvflowError, match="--resume"):
        train_student(run, data=wav_folder, settings=settings, config=SMALL, log=lambda _l: None)
    train_student(run, data=wav_folder, settings=settings, config=SMALL, log=lambda _l: None, resume=True)
    got = [float(line.split("\t")[2].split("=")[1]) for line in (run / "train_log.tsv").read_text().splitlines()]
    np.testing.assert_allclose(got, curve, rtol=1e-5)
    with pytest.raises(AvflowError, match="nothing to resume"):
        train_student(tmp_path / "fresh", data=wav_folder, settings=settings, config=SMALL, resume=True)


def test_cli_command_trains_a_student(wav_folder: Path, tmp_path: Path) -> None:
    avflow = [sys.executable, "-m", "avflow_cli.cli.main"]
    res = subprocess.run([*avflow, "train", "vocoder", "--data", str(wav_folder), "--out", str(tmp_path / "v"),
                          "--steps", "2", "--batch-size", "2", "--segment", "8", "--no-evaluate"],
                         capture_output=True, text=True, timeout=600, env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})
    assert res.returncode == 0, res.stderr[-2000:]
    assert (tmp_path / "v" / "student" / "model.safetensors").is_file()
    res = subprocess.run([*avflow, "train", "vocoder", "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "w"),
                          "--steps", "2"], capture_output=True, text=True, timeout=600)
    assert res.returncode == 2 and "not a folder" in (res.stdout + res.stderr) and "Traceback" not in res.stderr
    assert SAMPLE_RATE == 22050


def test_shipped_student_loads_and_its_quality_record_is_the_held_out_check() -> None:
    """The weights in the package: loadable, small, and shipped with the WER check `auto` relies on."""
    from avflow_cli.train.vocoder import HELD_OUT, VOICES

    folder = sv.shipped_student_dir()
    gen = load_student(folder)
    assert sum(p.numel() for p in gen.parameters()) < 4_000_000
    assert (folder / "model.safetensors").stat().st_size < 8 * 2**20
    q = sv.student_quality(folder)
    assert q["passed"] is True and q["sentences"] == HELD_OUT and q["voices"] == list(VOICES)
    assert q["wer_student"] <= q["wer_teacher"] + q["margin"] and q["asr"] == "pocketsphinx"
    mel = torch.randn(1, 50, 80) - 4
    assert NeuralVocoder(gen, "student")(mel).shape == (1, 50 * HOP_LENGTH)
