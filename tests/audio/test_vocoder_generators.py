"""HiFi-GAN / BigVGAN generators: release-format loading, weight-norm folding, errors, chunking.

Weights are random (tiny configs) and written exactly as the releases store them:
``{"generator": state_dict}`` with ``weight_g``/``weight_v`` pairs, BigVGAN's ``ups.{i}.0.*``
keys, and a ``config.json`` beside ``bigvgan_generator.pt``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path

import pytest
import torch
import torch.nn as nn

from avflow_cli.audio.bigvgan import (
    Activation1d,
    SnakeBeta,
    build_bigvgan,
    generator_to_release_keys,
    kaiser_sinc_filter,
    load_bigvgan,
)
from avflow_cli.audio.hifigan import GeneratorConfig, build_hifigan, fold_weight_norm, load_hifigan
from avflow_cli.audio.vocoder import NeuralVocoder, load_vocoder
from avflow_cli.errors import InputFileError

TINY = GeneratorConfig(upsample_initial_channel=16)  # the real 8·8·2·2 = 256× layout, few channels
TINY6 = replace(TINY, upsample_rates=(4, 4, 2, 2, 2, 2), upsample_kernel_sizes=(8, 8, 4, 4, 4, 4), upsample_initial_channel=64)


def _randomise(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random weights big enough to make every layer (and the Snake α, β) matter."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith((".alpha", ".beta")):
                p.copy_(0.3 * torch.randn(p.shape, generator=gen))
            else:
                fan_in = p[0].numel() if p.ndim > 1 else 1  # contractive scale: float rounding stays small
                p.copy_(0.6 * torch.randn(p.shape, generator=gen) / fan_in**0.5)
    return model.eval()


def _to_weight_norm(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Split every conv weight into the release's (weight_g, weight_v), as torch's weight_norm stores it."""
    out = {}
    for k, v in state.items():
        if k.endswith(".weight") and v.ndim == 3:
            g = v.flatten(1).norm(dim=1).view(-1, 1, 1)
            out[k[: -len("weight")] + "weight_g"] = g
            out[k[: -len("weight")] + "weight_v"] = v * 3.0  # any scale: v is normalised on load
        else:
            out[k] = v
    return out


def _config_json(cfg: GeneratorConfig, **overrides: object) -> dict:
    raw = {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(cfg).items()}
    raw["resblock_dilation_sizes"] = [list(d) for d in cfg.resblock_dilation_sizes]
    raw.update({"batch_size": 32, "segment_size": 8192, "num_freq": 1025})  # training keys are ignored
    raw.update(overrides)
    return raw


def write_bigvgan_release(folder: Path, cfg: GeneratorConfig, seed: int = 0, **overrides: object) -> nn.Module:
    """A BigVGAN release folder with random weights; returns the model that wrote it."""
    model = _randomise(build_bigvgan(cfg), seed)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(_config_json(cfg, **overrides), indent=2))
    state = generator_to_release_keys(_to_weight_norm(model.state_dict()))
    torch.save({"generator": state}, folder / "bigvgan_generator.pt")
    return model


def _mel(frames: int = 24, batch: int = 2, seed: int = 1) -> torch.Tensor:
    return torch.randn(batch, frames, 80, generator=torch.Generator().manual_seed(seed)) - 5.0  # (B, T, 80)


# ----------------------------------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore::FutureWarning")
@pytest.mark.parametrize("style", ["legacy", "parametrization"])
def test_fold_weight_norm_equals_torch_weight_norm(style: str) -> None:
    for conv in (nn.Conv1d(6, 5, 3), nn.ConvTranspose1d(6, 5, 4, 2)):
        if style == "legacy":  # weight_g / weight_v, as both releases store them
            wn = torch.nn.utils.weight_norm(conv)
        else:  # parametrizations.weight.original0 / original1
            wn = torch.nn.utils.parametrizations.weight_norm(conv)
        with torch.no_grad():
            for name, p in wn.named_parameters():
                if name.endswith(("weight_g", "original0")):
                    p.mul_(torch.rand_like(p) + 0.5)
        state = {f"layer.{k}": v.detach() for k, v in wn.state_dict().items()}
        folded = fold_weight_norm(state)
        with torch.no_grad():
            wn(torch.randn(1, 6, 8))  # legacy weight_norm recomputes .weight in a pre-hook
            expected = wn.weight.detach().clone()
        assert set(folded) == {"layer.weight", "layer.bias"}
        torch.testing.assert_close(folded["layer.weight"], expected, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize(
    "cfg",
    [TINY, TINY6, replace(TINY, activation="snake", resblock="2"), replace(TINY, use_tanh_at_final=False, use_bias_at_final=False)],
    ids=["base-8822", "v1-442222", "snake-resblock2", "v2-clamp-nobias"],
)
def test_bigvgan_release_folder_roundtrip(tmp_path: Path, cfg: GeneratorConfig) -> None:
    ref = write_bigvgan_release(tmp_path / "bigvgan", cfg, seed=3)
    loaded = load_bigvgan(tmp_path / "bigvgan")
    mel = _mel().transpose(1, 2)  # (B, 80, T)
    with torch.inference_mode():
        want, got = ref(mel), loaded(mel)
    assert got.shape == (2, 1, 24 * 256)
    torch.testing.assert_close(got, want, rtol=0, atol=2e-5)  # weight-norm folding rounds
    assert want.abs().max() > 0.05  # the random net does produce a signal
    # the generator's own .pt path works too
    assert isinstance(load_bigvgan(tmp_path / "bigvgan" / "bigvgan_generator.pt"), nn.Module)


def test_bigvgan_snakebeta_parameters_matter(tmp_path: Path) -> None:
    write_bigvgan_release(tmp_path / "a", TINY, seed=3)
    model = load_bigvgan(tmp_path / "a")
    mel = _mel().transpose(1, 2)
    with torch.inference_mode():
        before = model(mel)
        model.resblocks[0].activations[0].act.beta.add_(1.0)
        after = model(mel)
    assert (before - after).abs().max() > 1e-4


def test_bigvgan_state_dict_uses_release_key_names() -> None:
    keys = set(generator_to_release_keys(build_bigvgan(TINY).state_dict()))
    for k in (
        "ups.0.0.weight",
        "resblocks.0.activations.0.act.alpha",
        "resblocks.0.activations.0.act.beta",
        "resblocks.0.activations.0.upsample.filter",
        "resblocks.0.activations.0.downsample.lowpass.filter",
        "activation_post.act.beta",
        "activation_post.upsample.filter",
        "conv_post.weight",
        "conv_pre.bias",
    ):
        assert k in keys, k
    assert len([k for k in keys if k.startswith("resblocks.0.activations.")]) == 6 * 4  # 6 acts × (α, β, 2 filters)


def test_kaiser_sinc_filter_is_a_unit_gain_lowpass() -> None:
    taps = kaiser_sinc_filter(0.25, 0.3, 12)[0, 0]  # (12,)
    assert taps.shape == (12,)
    assert torch.isclose(taps.sum(), torch.tensor(1.0))
    torch.testing.assert_close(taps, taps.flip(0))  # symmetric: linear phase
    resp = torch.fft.rfft(taps, 512).abs()  # 257 bins over [0, 0.5]
    assert resp[:20].min() > 0.9 and resp[-60:].max() < 0.05  # passes low, stops near Nyquist


def test_antialiased_identity_activation_preserves_low_frequencies() -> None:
    act = Activation1d(nn.Identity())
    t = torch.arange(400, dtype=torch.float32)
    x = torch.sin(2 * torch.pi * 0.02 * t)[None, None]  # (1, 1, 400), well below Nyquist/2
    y = act(x)
    assert y.shape == x.shape
    assert (y - x)[..., 20:-20].abs().max() < 0.02


def test_snakebeta_formula() -> None:
    act = SnakeBeta(3, logscale=True)
    with torch.no_grad():
        act.alpha.copy_(torch.tensor([0.0, 0.5, -0.5]))
        act.beta.copy_(torch.tensor([0.2, 0.0, 0.1]))
    x = torch.randn(2, 3, 7)
    a, b = act.alpha.exp()[None, :, None], act.beta.exp()[None, :, None]
    torch.testing.assert_close(act(x), x + torch.sin(a * x) ** 2 / b, rtol=1e-5, atol=1e-6)


def test_hifigan_release_roundtrip(tmp_path: Path) -> None:
    ref = _randomise(build_hifigan(TINY), seed=5)
    torch.save({"generator": _to_weight_norm(ref.state_dict())}, tmp_path / "generator_tiny.pth.tar")
    (tmp_path / "config.json").write_text(json.dumps(_config_json(TINY)))
    loaded = load_hifigan(tmp_path / "generator_tiny.pth.tar")
    mel = _mel().transpose(1, 2)
    with torch.inference_mode():
        torch.testing.assert_close(loaded(mel), ref(mel), rtol=0, atol=2e-5)


# ---- errors ----------------------------------------------------------------------------------
def test_truncated_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    write_bigvgan_release(tmp_path / "b", TINY)
    pt = tmp_path / "b" / "bigvgan_generator.pt"
    pt.write_bytes(pt.read_bytes()[: pt.stat().st_size // 2])
    with pytest.raises(InputFileError, match=r"bigvgan_generator\.pt.*not a readable PyTorch checkpoint"):
        load_bigvgan(tmp_path / "b")


def test_weights_for_another_architecture_are_refused(tmp_path: Path) -> None:
    write_bigvgan_release(tmp_path / "c", TINY)
    cfg = json.loads((tmp_path / "c" / "config.json").read_text())
    cfg["upsample_initial_channel"] = 32  # config no longer matches the weights
    (tmp_path / "c" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(InputFileError, match="wrong shape"):
        load_bigvgan(tmp_path / "c")
    # a HiFi-GAN file is not a BigVGAN: keys are missing
    hifi = _randomise(build_hifigan(TINY))
    torch.save({"generator": _to_weight_norm(hifi.state_dict())}, tmp_path / "c" / "bigvgan_generator.pt")
    (tmp_path / "c" / "config.json").write_text(json.dumps(_config_json(TINY)))
    with pytest.raises(InputFileError, match="missing"):
        load_bigvgan(tmp_path / "c")


def test_checkpoint_without_generator_key_is_refused(tmp_path: Path) -> None:
    write_bigvgan_release(tmp_path / "d", TINY)
    torch.save({"model": {}}, tmp_path / "d" / "bigvgan_generator.pt")
    with pytest.raises(InputFileError, match="'generator'"):
        load_bigvgan(tmp_path / "d")


def test_other_mel_recipe_is_refused(tmp_path: Path) -> None:
    write_bigvgan_release(tmp_path / "v2", TINY, fmax=None)  # like bigvgan_v2_22khz_80band_256x
    with pytest.raises(InputFileError, match=r"fmax=null"):
        load_bigvgan(tmp_path / "v2")


def test_incomplete_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "e").mkdir()
    (tmp_path / "e" / "config.json").write_text("{}")
    with pytest.raises(InputFileError, match="bigvgan_generator.pt is missing"):
        load_bigvgan(tmp_path / "e")


# ---- vocoder wrapper -------------------------------------------------------------------------
def test_chunked_inference_equals_one_pass(tmp_path: Path) -> None:
    write_bigvgan_release(tmp_path / "f", TINY, seed=7)
    gen = load_bigvgan(tmp_path / "f")
    mel = _mel(frames=90, batch=1, seed=2)
    whole = NeuralVocoder(gen, "x", chunk_frames=None)(mel)
    chunked = NeuralVocoder(gen, "x", chunk_frames=16)(mel)
    assert whole.shape == chunked.shape == (1, 90 * 256)
    torch.testing.assert_close(chunked, whole, rtol=0, atol=1e-5)
    # too little context shows up as a difference: the check above is not vacuous
    starved = NeuralVocoder(gen, "x", chunk_frames=16, context_frames=0)(mel)
    assert (starved - whole).abs().max() > 1e-4


def test_receptive_field_bound_holds() -> None:
    gen = _randomise(build_bigvgan(TINY), seed=1)
    rf = gen.receptive_field_frames()
    mel = _mel(frames=2 * rf + 20, batch=1).transpose(1, 2)  # (1, 80, T)
    bumped = mel.clone()
    bumped[..., 0] += 3.0  # change the first frame only
    with torch.inference_mode():
        diff = (gen(mel) - gen(bumped))[0, 0].abs()  # (T·256,)
    first_unaffected = (rf + 1) * 256
    assert diff[:256].max() > 1e-4
    assert diff[first_unaffected:].max() == 0.0


def test_load_vocoder_explicit_bigvgan_folder(tmp_path: Path) -> None:
    write_bigvgan_release(tmp_path / "bigvgan_base_22khz_80band", TINY)
    voc = load_vocoder("auto", checkpoint=tmp_path / "bigvgan_base_22khz_80band")
    assert voc.name == "bigvgan:bigvgan_base_22khz_80band"
    assert voc.sample_rate == 22050
    wav = voc(_mel(frames=10))
    assert wav.shape == (2, 2560) and wav.dtype == torch.float32
    assert wav.abs().max() <= 1.0


def test_load_vocoder_finds_bigvgan_in_checkpoint_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AVFLOW_CHECKPOINTS", str(tmp_path))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    write_bigvgan_release(tmp_path / "bigvgan_22khz_80band", TINY)
    assert load_vocoder("auto").name == "bigvgan:bigvgan_22khz_80band"
    assert load_vocoder("bigvgan").name == "bigvgan:bigvgan_22khz_80band"


def test_load_vocoder_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from avflow_cli.errors import AvflowError, MissingCheckpointError

    monkeypatch.setenv("AVFLOW_CHECKPOINTS", str(tmp_path))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(MissingCheckpointError, match="bigvgan_base_22khz_80band"):
        load_vocoder("bigvgan")
    with pytest.raises(MissingCheckpointError, match="nowhere"):
        load_vocoder("auto", checkpoint=tmp_path / "nowhere")  # explicit path: no silent fallback
    with pytest.raises(AvflowError, match="unknown vocoder"):
        load_vocoder("wavenet")
