"""The authors' text-to-tokens checkpoint loads strictly and reproduces their module's output.

Fixture (tests/fixtures/t2t/README.md): their module with small seeded weights, its state
dict, a batch of inputs, the exact sampler noise and their output; plus the key/shape list
of the full-size release state dict.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from avflow_cli.errors import AvflowError
from avflow_cli.models.text2tokens import TextToTokens, convert_t2t_checkpoint, import_release_t2t, load_t2t, preset
from avflow_cli.models.text2tokens.config import RELEASE_TOKEN_MEAN, RELEASE_TOKEN_STD

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "t2t"


@pytest.fixture(scope="module")
def io() -> dict:
    return torch.load(FIXTURE / "io.pth", weights_only=True)


def _generate(model: TextToTokens, io: dict) -> tuple[torch.Tensor, torch.Tensor]:
    return model.generate(io["x"], io["x_lengths"], steps=io["steps"], temperature=io["temperature"],
                          length_scale=io["length_scale"], noise=io["noise"])


def test_release_fixture_output_is_reproduced(io: dict) -> None:
    cfg, state = convert_t2t_checkpoint(FIXTURE / "state_dict.pth")
    assert cfg.preset == "release" and cfg.additive_attention_mask
    assert cfg.token_mean == pytest.approx(RELEASE_TOKEN_MEAN) and cfg.token_std == pytest.approx(RELEASE_TOKEN_STD)
    model = TextToTokens(cfg)
    model.load_state_dict(state, strict=True)
    model.eval()
    mu, logw, _ = model.encoder(io["x"], io["x_lengths"])
    torch.testing.assert_close(mu, io["mu_x"], atol=1e-5, rtol=0)
    torch.testing.assert_close(logw, io["logw"], atol=1e-5, rtol=0)
    tokens, lengths = _generate(model, io)
    assert lengths.tolist() == io["y_lengths"].tolist()
    torch.testing.assert_close(tokens, io["tokens"], atol=1e-5, rtol=1e-5)  # float32 reduction order varies with threads


def test_release_decoder_mask_convention_matters(io: dict) -> None:
    """With real masking the padded item changes: the fixture does test the release's additive mask."""
    cfg, state = convert_t2t_checkpoint(FIXTURE / "state_dict.pth")
    cfg.additive_attention_mask = False
    model = TextToTokens(cfg)
    model.load_state_dict(state, strict=True)
    tokens, _ = _generate(model.eval(), io)
    assert (tokens - io["tokens"]).abs().max() > 1e-3


def test_full_size_release_keys_load_strictly(tmp_path: Path) -> None:
    shapes = json.loads((FIXTURE / "release_keys.json").read_text())
    state = {k: torch.zeros(v) for k, v in shapes.items()}
    state["mean"], state["std"] = torch.tensor(RELEASE_TOKEN_MEAN), torch.tensor(RELEASE_TOKEN_STD)
    torch.save(state, tmp_path / "text_to_tokens.pth")
    cfg, converted = convert_t2t_checkpoint(tmp_path / "text_to_tokens.pth")
    assert cfg == preset("release", token_mean=cfg.token_mean, token_std=cfg.token_std)
    ours = TextToTokens(cfg)
    assert {k: list(v.shape) for k, v in ours.state_dict().items()} == shapes
    assert set(converted) == set(shapes)


def test_import_release_writes_a_loadable_model_dir(tmp_path: Path, io: dict) -> None:
    import_release_t2t(FIXTURE / "state_dict.pth", tmp_path / "t2t")
    model = load_t2t(tmp_path / "t2t")
    tokens, _ = _generate(model, io)
    torch.testing.assert_close(tokens, io["tokens"], atol=1e-5, rtol=1e-5)  # float32 reduction order varies with threads


def test_converter_errors(tmp_path: Path) -> None:
    with pytest.raises(AvflowError, match="file not found"):
        convert_t2t_checkpoint(tmp_path / "missing.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(AvflowError, match="junk.pth: not a readable PyTorch checkpoint"):
        convert_t2t_checkpoint(tmp_path / "junk.pth")
    state = torch.load(FIXTURE / "state_dict.pth", weights_only=True)
    del state["decoder.estimator.final_proj.bias"]
    torch.save({"state_dict": state}, tmp_path / "partial.pth")
    with pytest.raises(AvflowError, match="1 missing"):
        convert_t2t_checkpoint(tmp_path / "partial.pth")
    torch.save({"encoder.emb.weight": torch.zeros(178, 8)}, tmp_path / "other.pth")
    with pytest.raises(AvflowError, match="not a text-to-tokens checkpoint"):
        convert_t2t_checkpoint(tmp_path / "other.pth")
