"""Streaming schedules (models/streaming.py): exact equals offline, the look-ahead is exactly what the
receptive field says, low-latency stays close and seamless, the vocoder streams without clicks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from avflow_cli.models.avflow import AVFlow
from avflow_cli.models.config import AVFlowConfig
from avflow_cli.models.flow import euler_sample
from avflow_cli.models.normalize import Normalizer
from avflow_cli.models.streaming import (
    BlockNoise, FullNoise, StreamingVocoder, exact_lookahead, make_sampler, receptive_field,
)


def _model(fusion: str = "highway", depth: int = 2, left: int = 3, right: int = 2) -> AVFlow:
    torch.manual_seed(0)
    cfg = AVFlowConfig(face_dim=16, d_model=32, hidden_dim=64, heads=2, depth=depth, steps=3, attn_block=16,
                       window_left=left, window_right=right, fusion=fusion)
    model = AVFlow(cfg).eval()
    with torch.no_grad():
        for p in model.parameters():  # AdaLN-Zero starts as the identity: wake every block up
            p.add_(torch.randn_like(p) * 0.05)
    model.normalizer = Normalizer.identity({"face": 16, "head": 8, "mel": 80, "tokens": 29})
    return model


def _run(sampler, cond: torch.Tensor, sizes: list[int]) -> torch.Tensor:
    outs, pos = [], 0
    for n in sizes:
        outs.append(sampler.push(cond[pos : pos + n]))
        pos += n
    outs.append(sampler.finish())
    return torch.cat(outs)


@pytest.mark.parametrize("fusion", ["highway", "separate", "shared", "cascade"])
@pytest.mark.parametrize("chunk", [1, 7, 40])
def test_exact_schedule_equals_offline(fusion: str, chunk: int) -> None:
    model = _model(fusion)
    T, steps = 157, 3
    cond = torch.randn(T, model.config.cond_dim)
    x0 = FullNoise(T, model.config.x_dim, seed=5).x0
    with torch.inference_mode():
        offline = euler_sample(model, x0, cond[None], steps)[0]  # (T, X)
    sampler = make_sampler(model, "exact", steps=steps, seed=5, total=T, chunk=chunk)
    out = _run(sampler, cond, [chunk] * (-(-T // chunk)))
    assert out.shape == offline.shape
    assert (out - offline).abs().max().item() <= 1e-5


def test_exact_frames_come_out_as_soon_as_final() -> None:
    """After A cond frames, exactly A − steps·depth·window_right frames are out."""
    model = _model()
    T, steps = 120, 3
    la = exact_lookahead(model.config, steps)
    assert la == steps * model.config.depth * model.config.window_right == 12
    sampler = make_sampler(model, "exact", steps=steps, seed=0, total=T, chunk=10)
    cond = torch.randn(T, model.config.cond_dim)
    got = 0
    for a in range(10, T, 10):
        got += len(sampler.push(cond[a - 10 : a]))
        assert got == max(0, a - la)


def test_lookahead_is_the_true_receptive_field() -> None:
    """Changing cond at t + look-ahead changes frame t offline; changing it one frame later does not.

    In float64, so that the weakest path (every hop at the window's edge) is not lost in rounding."""
    model = _model(depth=2, left=3, right=2).double()
    T, steps, t = 100, 3, 30
    la = exact_lookahead(model.config, steps)
    x0 = FullNoise(T, model.config.x_dim, seed=1).x0.double()
    cond = torch.randn(1, T, model.config.cond_dim, dtype=torch.float64)
    with torch.inference_mode():
        base = euler_sample(model, x0, cond, steps)[0, t]
        near, far = cond.clone(), cond.clone()
        near[0, t + la] += 10.0
        far[0, t + la + 1] += 10.0
        assert (euler_sample(model, x0, near, steps)[0, t] - base).abs().max() > 0
        assert (euler_sample(model, x0, far, steps)[0, t] - base).abs().max() == 0
    rf = receptive_field(_model(fusion="cascade").config)
    assert (rf.left, rf.right) == (2 * 2 * 3, 2 * 2 * 2)  # cascade chains the two stacks


def test_low_latency_is_close_and_seamless() -> None:
    model = _model()
    T, steps = 150, 3
    cond = torch.randn(T, model.config.cond_dim)
    x0 = FullNoise(T, model.config.x_dim, seed=2).x0
    with torch.inference_mode():
        offline = euler_sample(model, x0, cond[None], steps)[0]
    sampler = make_sampler(model, "low-latency", steps=steps, seed=2, total=T, chunk=16, lookahead=8)
    out = _run(sampler, cond, [5] * 30)
    assert out.shape == offline.shape
    err = (out - offline).abs().mean().item()
    assert err < 0.1 * offline.abs().mean().item()  # close to offline
    # no seam: the step across a chunk boundary is like the steps inside chunks
    steps_all = (out[1:] - out[:-1]).norm(dim=1)
    boundary = steps_all[torch.arange(15, T - 1, 16)]
    assert boundary.mean() < 2.0 * steps_all.mean()


def test_block_noise_is_the_same_however_cut() -> None:
    noise = BlockNoise(7, seed=3)
    whole = noise(0, 2500)
    again = BlockNoise(7, seed=3)
    parts = torch.cat([again(a, min(2500, a + 333)) for a in range(0, 2500, 333)], dim=1)
    assert torch.equal(whole, parts)


def test_streaming_vocoder_matches_one_pass_at_every_boundary() -> None:
    from avflow_cli.audio.mel import log_mel
    from avflow_cli.audio.vocoder import load_vocoder

    voc = load_vocoder("hifigan")
    t = np.arange(int(1.5 * 22050)) / 22050
    tone = (0.3 * np.sin(2 * np.pi * 220 * t * (1 + 0.5 * t)) * (1 + np.sin(2 * np.pi * 3 * t)) / 2).astype(np.float32)
    mel = np.asarray(log_mel(torch.from_numpy(tone)[None]))[0]  # (T, 80)
    with torch.inference_mode():
        whole = voc(torch.from_numpy(mel)[None])[0].numpy()
    stream = StreamingVocoder(voc)
    pieces = [stream.push(mel[a : a + 13]) for a in range(0, len(mel), 13)] + [stream.finish()]
    joined = np.concatenate(pieces)
    assert joined.shape == whole.shape
    assert np.abs(joined - whole).max() < 1e-4 * max(1.0, np.abs(whole).max())
    # around each piece boundary in particular (clicks live there)
    edges = np.cumsum([len(p) for p in pieces])[:-1]
    for e in edges[(edges > 64) & (edges < len(whole) - 64)]:
        assert np.abs(joined[e - 64 : e + 64] - whole[e - 64 : e + 64]).max() < 1e-4


def test_streaming_vocoder_short_right_context_keeps_the_whole_past() -> None:
    """With a right context shorter than the receptive field, each piece's audio is exactly what
    one pass over all the mel known then gives: only the future is missing, never the past."""
    from avflow_cli.audio.mel import log_mel
    from avflow_cli.audio.vocoder import load_vocoder

    voc = load_vocoder("hifigan")
    t = np.arange(int(1.0 * 22050)) / 22050
    tone = (0.3 * np.sin(2 * np.pi * 180 * t * (1 + t))).astype(np.float32)
    mel = np.asarray(log_mel(torch.from_numpy(tone)[None]))[0]  # (T, 80)
    stream = StreamingVocoder(voc, context=4)
    assert stream.left == voc.context_frames > stream.context
    done = 0
    for a in range(0, len(mel) - 8, 8):
        piece = stream.push(mel[a : a + 8])
        known = a + 8
        with torch.inference_mode():
            upto = voc(torch.from_numpy(mel[:known])[None])[0].numpy()  # one pass over what is known
        end = done + len(piece) // stream.hop
        if len(piece):
            assert end == known - 4
            np.testing.assert_allclose(piece, upto[done * stream.hop : end * stream.hop], atol=1e-4)
        done = end


@pytest.mark.parametrize("fusion", ["highway", "cascade"])
def test_low_latency_keeps_the_past_states_so_full_lookahead_is_offline(fusion: str) -> None:
    """Past frames enter each chunk with the state they had at every Euler step (not re-anchored on
    the straight path through their final value), so with the exact look-ahead the low-latency
    schedule gives the offline result, and a shorter look-ahead only costs the frames it cannot see."""
    model = _model(fusion=fusion)
    T, steps = 150, 3
    cond = torch.randn(T, model.config.cond_dim)
    x0 = FullNoise(T, model.config.x_dim, seed=2).x0
    with torch.inference_mode():
        offline = euler_sample(model, x0, cond[None], steps)[0]
        full = make_sampler(model, "low-latency", steps=steps, seed=2, total=T, chunk=16,
                            lookahead=exact_lookahead(model.config, steps))
        torch.testing.assert_close(_run(full, cond, [5] * 30), offline, atol=1e-5, rtol=0)
        none = make_sampler(model, "low-latency", steps=steps, seed=2, total=T, chunk=16, lookahead=0)
        assert (_run(none, cond, [5] * 30) - offline).abs().max() > 1e-3  # no future: really approximate
