"""Text-to-tokens model pieces: MAS against brute force, paths, losses, synthesis, model directories."""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from avflow_cli.constants import TOKEN_DIM
from avflow_cli.errors import AvflowError
from avflow_cli.models.config import dataclass_from_dict, to_json_dict
from avflow_cli.models.text2tokens import T2TConfig, TextToTokens, load_t2t, preset, save_t2t
from avflow_cli.models.text2tokens.alignment import generate_path, maximum_path
from avflow_cli.models.text2tokens.losses import duration_loss, gaussian_log_prior, log_durations, prior_loss
from avflow_cli.models.text2tokens.model import pad_length


# ------------------------------------------------------------------------------------ MAS
def _brute_force_best(lp: np.ndarray) -> float:
    """Best total over every monotonic path (enumerated via the frames where the symbol advances)."""
    n, t = lp.shape
    best = -np.inf
    for cuts in itertools.combinations(range(1, t), n - 1):
        bounds = (0, *cuts, t)
        total = sum(lp[i, bounds[i]:bounds[i + 1]].sum() for i in range(n))
        best = max(best, total)
    return best


def _simple_dp(lp: np.ndarray) -> np.ndarray:
    """Plain two-loop Glow-TTS dynamic programme (the Cython reference), for one item."""
    n, t = lp.shape
    v = np.full((n, t), -np.inf)
    v[0, 0] = lp[0, 0]
    for y in range(1, t):
        for x in range(min(n, y + 1)):
            v[x, y] = lp[x, y] + max(v[x, y - 1], v[x - 1, y - 1] if x else -np.inf)
    path, x = np.zeros((n, t)), n - 1
    for y in range(t - 1, -1, -1):
        path[x, y] = 1
        if x and (x == y or v[x, y - 1] < v[x - 1, y - 1]):
            x -= 1
    return path


def _check_monotonic(path: np.ndarray) -> None:
    n, t = path.shape
    assert (path.sum(0) == 1).all(), "every frame belongs to exactly one symbol"
    assert (path.sum(1) >= 1).all(), "every symbol gets at least one frame"
    sym = path.argmax(0)
    assert sym[0] == 0 and sym[-1] == n - 1 and (np.diff(sym) >= 0).all() and (np.diff(sym) <= 1).all()


def test_mas_matches_brute_force_on_small_grids() -> None:
    rng = np.random.default_rng(0)
    for n, t in [(1, 1), (1, 4), (2, 2), (2, 5), (3, 6), (4, 8), (5, 9)]:
        for _ in range(3):
            lp = rng.normal(size=(n, t))
            path = maximum_path(torch.from_numpy(lp)[None], torch.tensor([n]), torch.tensor([t]))[0].numpy()
            _check_monotonic(path)
            assert (path * lp).sum() == pytest.approx(_brute_force_best(lp), abs=1e-9)


def test_mas_matches_simple_dp_on_ragged_batches() -> None:
    g = torch.Generator().manual_seed(1)
    b, n, t = 6, 15, 40
    lp = torch.randn(b, n, t, generator=g, dtype=torch.float64) * 3
    x_len = torch.tensor([15, 1, 7, 12, 15, 3])
    y_len = torch.tensor([40, 9, 7, 33, 15, 40])
    path = maximum_path(lp, x_len, y_len)
    assert path.shape == (b, n, t) and path.dtype == lp.dtype
    for i in range(b):
        nb, tb = int(x_len[i]), int(y_len[i])
        ref = _simple_dp(lp[i, :nb, :tb].numpy())
        np.testing.assert_array_equal(path[i, :nb, :tb].numpy(), ref)
        assert path[i].sum() == tb  # nothing outside the item's own grid
        _check_monotonic(path[i, :nb, :tb].numpy())


def test_mas_recovers_planted_alignment() -> None:
    durs = torch.tensor([3, 1, 5, 2, 4])
    truth = generate_path(durs[None].float(), torch.ones(1, 5, int(durs.sum())))
    lp = torch.where(truth > 0, 0.0, -5.0)
    assert torch.equal(maximum_path(lp, torch.tensor([5]), torch.tensor([int(durs.sum())])), truth)


def test_mas_is_fast_on_long_batches() -> None:
    lp = torch.randn(16, 200, 800)
    start = time.perf_counter()
    path = maximum_path(lp, torch.full((16,), 200), torch.full((16,), 800))
    elapsed = time.perf_counter() - start
    assert path.sum() == 16 * 800
    assert elapsed < 10.0, f"MAS took {elapsed:.1f} s for 16 x 200 x 800"


# ------------------------------------------------------------------------------------ paths and losses
def test_generate_path_integer_and_fractional() -> None:
    path = generate_path(torch.tensor([[2.0, 1.0, 3.0]]), torch.ones(1, 3, 8))
    expected = torch.tensor([[1, 1, 0, 0, 0, 0, 0, 0], [0, 0, 1, 0, 0, 0, 0, 0], [0, 0, 0, 1, 1, 1, 0, 0]]).float()
    assert torch.equal(path[0], expected)
    frac = generate_path(torch.tensor([[1.5, 1.5, 1.5]]), torch.ones(1, 3, 5))[0]  # ends 1.5, 3.0, 4.5
    assert frac.sum(1).tolist() == [2.0, 1.0, 2.0]


def test_gaussian_log_prior_matches_direct_formula() -> None:
    mu, y = torch.randn(2, TOKEN_DIM, 5, dtype=torch.float64), torch.randn(2, TOKEN_DIM, 9, dtype=torch.float64)
    diff = y[:, :, None, :] - mu[:, :, :, None]  # (B, D, N, T)
    direct = (-0.5 * diff**2 - 0.5 * np.log(2 * np.pi)).sum(1)  # (B, N, T)
    torch.testing.assert_close(gaussian_log_prior(mu, y), direct)


def test_losses_ignore_padding() -> None:
    y, mu = torch.randn(2, TOKEN_DIM, 6), torch.randn(2, TOKEN_DIM, 6)
    mask = torch.ones(2, 1, 6)
    mask[1, :, 4:] = 0
    y2 = y.clone()
    y2[1, :, 4:] += 100.0
    assert prior_loss(y, mu, mask) == pytest.approx(float(prior_loss(y2, mu, mask)))
    path = torch.zeros(1, 3, 4)
    path[0, 0, :2] = path[0, 1, 2] = path[0, 2, 3] = 1
    x_mask = torch.ones(1, 1, 3)
    target = log_durations(path, x_mask)
    assert torch.allclose(target, torch.log(torch.tensor([[[2.0, 1.0, 1.0]]]) + 1e-8))
    assert duration_loss(target, target, torch.tensor([3])) == 0


# ------------------------------------------------------------------------------------ model
@pytest.fixture(scope="module")
def tiny_model() -> TextToTokens:
    torch.manual_seed(0)
    return TextToTokens(preset("tiny")).eval()


def test_synthesize_shape_seed_and_speed(tiny_model: TextToTokens) -> None:
    a = tiny_model.synthesize("Hello there.", steps=2, seed=3)
    b = tiny_model.synthesize("Hello there.", steps=2, seed=3)
    c = tiny_model.synthesize("Hello there.", steps=2, seed=4)
    assert a.dtype == np.float32 and a.ndim == 2 and a.shape[1] == TOKEN_DIM and np.isfinite(a).all()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    slow = tiny_model.synthesize("Hello there.", steps=2, length_scale=2.0)
    assert len(slow) == pytest.approx(2 * len(a), abs=2)


def test_output_length_is_sum_of_predicted_durations(tiny_model: TextToTokens) -> None:
    from avflow_cli.text import to_symbol_ids

    ids = torch.tensor([to_symbol_ids("The quick brown fox.")])
    _, logw, mask = tiny_model.encoder(ids, torch.tensor([ids.shape[1]]))
    w = torch.exp(logw) * mask
    for rounding, frames in (("round", torch.round(w)), ("ceil", torch.ceil(w))):
        tiny_model.config.duration_rounding = rounding
        expected = int(frames.sum())
        tokens, lengths = tiny_model.generate(ids, torch.tensor([ids.shape[1]]), steps=1)
        assert int(lengths[0]) == tokens.shape[1] == expected
        assert pad_length(expected) % 4 == 0 and pad_length(expected) - expected < 4
    tiny_model.config.duration_rounding = "round"


def test_compute_loss_and_crops(tiny_model: TextToTokens) -> None:
    model = TextToTokens(preset("tiny"))
    x, xl = torch.randint(1, 178, (3, 20)), torch.tensor([20, 15, 9])
    y, yl = torch.randn(3, 61, TOKEN_DIM), torch.tensor([61, 50, 31])
    terms = model(x, xl, y, yl)
    assert set(terms) == {"dur", "prior", "cfm"} and all(torch.isfinite(v) for v in terms.values())
    sum(terms.values()).backward()
    assert model.decoder.estimator.final_proj.weight.grad is not None
    assert model.encoder.proj_w.proj.weight.grad is not None
    cropped = model(x, xl, y, yl, segment_frames=16)
    assert torch.isfinite(cropped["cfm"])


def test_config_round_trip_and_errors() -> None:
    cfg = preset("tiny", n_layers=3)
    assert dataclass_from_dict(T2TConfig, json.loads(json.dumps(to_json_dict(cfg))), "x") == cfg
    with pytest.raises(AvflowError, match="unknown text-to-tokens preset"):
        preset("huge")
    with pytest.raises(AvflowError, match="unknown config fields"):
        dataclass_from_dict(T2TConfig, {**to_json_dict(cfg), "bogus": 1}, "x")
    with pytest.raises(AvflowError, match="multiples of 8"):
        preset("tiny", channels=(20, 20)).validate()


# ------------------------------------------------------------------------------------ model directories
def test_save_and_load_model_dir(tmp_path: Path, tiny_model: TextToTokens) -> None:
    save_t2t(tmp_path / "t2t", tiny_model)
    obj = json.loads((tmp_path / "t2t" / "config.json").read_text())
    assert obj["kind"] == "t2t" and obj["preset"] == "tiny" and obj["normalization"]["tokens"]["mean"] == 0.0
    loaded = load_t2t(tmp_path / "t2t")
    assert not loaded.training
    np.testing.assert_array_equal(loaded.synthesize("hi", steps=2), tiny_model.synthesize("hi", steps=2))


def test_load_errors(tmp_path: Path, tiny_model: TextToTokens) -> None:
    with pytest.raises(AvflowError, match="model directory not found"):
        load_t2t(tmp_path / "nope")
    save_t2t(tmp_path / "m", tiny_model)
    (tmp_path / "m" / "model.safetensors").unlink()
    with pytest.raises(AvflowError, match="no weights"):
        load_t2t(tmp_path / "m")
    save_t2t(tmp_path / "m2", tiny_model)
    obj = json.loads((tmp_path / "m2" / "config.json").read_text())
    obj["model"]["n_layers"] = 3
    (tmp_path / "m2" / "config.json").write_text(json.dumps(obj))
    with pytest.raises(AvflowError, match="different architecture"):
        load_t2t(tmp_path / "m2")
    obj["kind"] = "headvae"
    (tmp_path / "m2" / "config.json").write_text(json.dumps(obj))
    with pytest.raises(AvflowError, match=r"expected 't2t' \(a text-to-tokens model\)"):
        load_t2t(tmp_path / "m2")


def test_synthesize_rejects_bad_text(tiny_model: TextToTokens) -> None:
    with pytest.raises(AvflowError, match="empty text"):
        tiny_model.synthesize("  ")
    with pytest.raises(AvflowError, match="no pronounceable"):
        tiny_model.synthesize("###")
