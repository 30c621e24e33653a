"""Wav2Vec2 tokens: torchaudio's file format, windowed long-audio inference, input checks.

Chunking is tested on a small random wav2vec2 (same conv front end and transformer type as
base, fewer channels/layers): the windowing maths does not depend on the size. Attention is
global, so windowed logits cannot equal whole-file logits exactly; these tests pin down what
does hold (identical frame grid, exact equality when one window suffices, deviation shrinking
with overlap and bounded) with the numbers measured on this random model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torchaudio.models import wav2vec2_model

from avflow_cli.audio.asr_tokens import (
    FAIRSEQ_EXTRA_ROWS,
    Wav2Vec2Tokens,
    build_model,
    check_label_order,
    load_state,
    num_token_frames,
    windows,
)
from avflow_cli.errors import AvflowError, InputFileError, MissingCheckpointError

FILE_NAME = "wav2vec2_fairseq_base_ls960_asr_ls960.pth"


def tiny_wav2vec2(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    conv = [(32, 10, 5)] + [(32, 3, 2)] * 4 + [(32, 2, 2)] * 2  # base's strides: 320 samples per frame
    return wav2vec2_model(
        extractor_mode="group_norm", extractor_conv_layer_config=conv, extractor_conv_bias=False,
        encoder_embed_dim=64, encoder_projection_dropout=0.0, encoder_pos_conv_kernel=128,
        encoder_pos_conv_groups=16, encoder_num_layers=2, encoder_num_heads=4,
        encoder_attention_dropout=0.0, encoder_ff_interm_features=128, encoder_ff_interm_dropout=0.0,
        encoder_dropout=0.0, encoder_layer_norm_first=False, encoder_layer_drop=0.0, aux_num_out=29,
    ).eval()


@pytest.fixture(scope="module")
def tiny() -> torch.nn.Module:
    return tiny_wav2vec2()


def speechlike(seconds: float, sr: int = 16000, seed: int = 0) -> np.ndarray:
    """Gated, frequency-modulated tone plus noise: structured enough to give varied logits."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    gate = np.sin(2 * np.pi * 0.7 * t) > 0
    tone = 0.3 * np.sin(2 * np.pi * 200 * t * (1 + 0.1 * np.sin(t)))
    return (tone * gate + 0.05 * rng.standard_normal(t.size)).astype(np.float32)


def torchaudio_file_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """``model``'s state dict as torchaudio's download stores it: fairseq's 32-row CTC head."""
    state = {k: v.clone() for k, v in model.state_dict().items()}
    for key in ("aux.weight", "aux.bias"):
        rows = list(state[key])
        for i in FAIRSEQ_EXTRA_ROWS:  # re-insert the unused dictionary rows at 1, 2, 3
            rows.insert(i, torch.full_like(rows[0], 7.0))
        state[key] = torch.stack(rows)
    return state


# ---- frame grid and windows -------------------------------------------------------------------
def test_label_order_matches_torchaudio(monkeypatch: pytest.MonkeyPatch) -> None:
    from torchaudio.pipelines import WAV2VEC2_ASR_BASE_960H

    from avflow_cli.audio import asr_tokens
    from avflow_cli.constants import TOKEN_DIM, TOKEN_LABELS

    assert tuple(WAV2VEC2_ASR_BASE_960H.get_labels()) == TOKEN_LABELS
    assert len(TOKEN_LABELS) == TOKEN_DIM and TOKEN_LABELS[:2] == ("-", "|")  # CTC blank, word separator
    check_label_order()
    # the guard really guards: a reordered label table is refused, naming both orders
    swapped = (TOKEN_LABELS[0], TOKEN_LABELS[2], TOKEN_LABELS[1], *TOKEN_LABELS[3:])
    monkeypatch.setattr(asr_tokens, "TOKEN_LABELS", swapped)
    with pytest.raises(AvflowError, match="differ from avflow's TOKEN_LABELS"):
        check_label_order()


@pytest.mark.parametrize("n", [400, 401, 719, 720, 16000, 16000 * 7 + 123])
def test_frame_count_matches_the_model(tiny: torch.nn.Module, n: int) -> None:
    with torch.inference_mode():
        out, _ = tiny(torch.zeros(1, n))
    assert out.shape[1] == num_token_frames(n)


@pytest.mark.parametrize("n", [16000 * 5, 16000 * 5 + 1, 16000 * 13 + 319, 16000 * 20 + 7])
@pytest.mark.parametrize("window,overlap", [(64000, 0), (64000, 32000), (48000, 47000)])
def test_windows_cover_every_frame_on_the_global_grid(n: int, window: int, overlap: int) -> None:
    spans = windows(n, window, overlap)
    assert spans[0][0] == 0 and spans[-1][1] == n
    assert all(s % 320 == 0 for s, _ in spans)
    covered = np.zeros(num_token_frames(n), dtype=bool)
    for s, e in spans:
        covered[s // 320 : s // 320 + num_token_frames(e - s)] = True
    assert covered.all()
    assert len({e - s for s, e in spans[:-1]}) <= 1  # equal lengths: windows batch without padding


# ---- chunked inference -----------------------------------------------------------------------
def test_single_window_equals_the_model_exactly(tiny: torch.nn.Module) -> None:
    wav = speechlike(3.0)
    got = Wav2Vec2Tokens(model=tiny).logits(wav, 16000)
    with torch.inference_mode():
        want = tiny(torch.from_numpy(wav)[None])[0][0].numpy()
    assert got.shape == (num_token_frames(wav.size), 29) and got.dtype == np.float32
    np.testing.assert_array_equal(got, want)


def test_windowed_logits_stay_close_to_whole_file(tiny: torch.nn.Module) -> None:
    wav = speechlike(12.0)
    whole = Wav2Vec2Tokens(model=tiny, window_seconds=60).logits(wav, 16000)
    spread = whole.max() - whole.min()

    def deviation(window: float, overlap: float) -> tuple[float, float]:
        chunked = Wav2Vec2Tokens(model=tiny, window_seconds=window, overlap_seconds=overlap, batch_size=3).logits(wav, 16000)
        assert chunked.shape == whole.shape
        return float(np.abs(chunked - whole).max()), float((chunked.argmax(1) == whole.argmax(1)).mean())

    no_overlap, _ = deviation(4.0, 0.0)
    short, _ = deviation(4.0, 2.0)
    long, agree = deviation(8.0, 4.0)
    # measured on this random model: max |Δ| 0.44 / 0.12 / 0.043 of a 1.9 logit spread,
    # argmax agreement 0.885 / 0.937 / 0.988
    assert long < short < no_overlap
    assert long < 0.05 * spread
    assert agree > 0.97


def test_batch_size_does_not_change_the_result(tiny: torch.nn.Module) -> None:
    wav = speechlike(9.0)
    one = Wav2Vec2Tokens(model=tiny, window_seconds=3, overlap_seconds=1, batch_size=1).logits(wav, 16000)
    many = Wav2Vec2Tokens(model=tiny, window_seconds=3, overlap_seconds=1, batch_size=8).logits(wav, 16000)
    np.testing.assert_allclose(many, one, atol=1e-5, rtol=0)


def test_input_is_resampled_to_16k(tiny: torch.nn.Module) -> None:
    from avflow_cli.audio.io import resample

    wav16 = speechlike(2.0)
    wav48 = resample(wav16, 16000, 48000).numpy()
    tok = Wav2Vec2Tokens(model=tiny)
    at48 = tok.logits(wav48, 48000)
    assert at48.shape == tok.logits(wav16, 16000).shape
    back = resample(wav48, 48000, 16000).numpy()  # what the model must have seen
    np.testing.assert_allclose(at48, tok.logits(back, 16000), atol=1e-5, rtol=0)


def test_bad_inputs(tiny: torch.nn.Module) -> None:
    tok = Wav2Vec2Tokens(model=tiny)
    with pytest.raises(AvflowError, match="mono"):
        tok.logits(np.zeros((2, 16000), np.float32), 16000)
    with pytest.raises(AvflowError, match="too short"):
        tok.logits(np.zeros(100, np.float32), 16000)
    with pytest.raises(AvflowError, match="overlap"):
        Wav2Vec2Tokens(model=tiny, window_seconds=2, overlap_seconds=2)
    assert tok.logits(np.zeros((1, 8000), np.float32), 16000).shape == (num_token_frames(8000), 29)


# ---- the weights file --------------------------------------------------------------------------
def test_torchaudio_file_format_loads_and_drops_fairseq_rows(tmp_path: Path, tiny: torch.nn.Module) -> None:
    torch.save(torchaudio_file_state(tiny), tmp_path / FILE_NAME)
    fresh = tiny_wav2vec2(seed=1)
    load_state(tmp_path / FILE_NAME, fresh)
    for k, v in tiny.state_dict().items():
        torch.testing.assert_close(fresh.state_dict()[k], v)


def test_missing_weights_name_the_file_and_folders(no_checkpoints: Path) -> None:
    with pytest.raises(MissingCheckpointError) as err:
        Wav2Vec2Tokens()
    assert FILE_NAME in str(err.value) and str(no_checkpoints) in str(err.value)


def test_wrong_or_broken_weight_files(no_checkpoints: Path, tiny: torch.nn.Module) -> None:
    path = no_checkpoints / FILE_NAME
    torch.save(torchaudio_file_state(tiny), path)  # right name, wrong (small) architecture
    with pytest.raises(InputFileError, match="do not match wav2vec2 base"):
        Wav2Vec2Tokens()
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(InputFileError, match="truncated or corrupt"):
        Wav2Vec2Tokens()
    torch.save({"model": {}, "cfg": {}}, path)  # a fairseq-style checkpoint
    with pytest.raises(InputFileError, match="not torchaudio's"):
        Wav2Vec2Tokens()


@pytest.mark.slow
def test_full_size_file_loads_from_torch_hub_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real architecture, random weights, in torchaudio's cache folder (≈ 380 MB on disk)."""
    monkeypatch.setenv("AVFLOW_CHECKPOINTS", str(tmp_path / "empty"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    ref = build_model()
    hub = tmp_path / "torch" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    torch.save(torchaudio_file_state(ref), hub / FILE_NAME)
    tok = Wav2Vec2Tokens()
    assert tok.source == str(hub / FILE_NAME)
    wav = speechlike(1.0)
    with torch.inference_mode():
        want = ref(torch.from_numpy(wav)[None])[0][0].numpy()
    np.testing.assert_allclose(tok.logits(wav, 16000), want, atol=1e-5, rtol=0)
