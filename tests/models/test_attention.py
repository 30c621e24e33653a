"""Banded windowed attention equals the dense masked formulation, for many lengths and windows."""

from __future__ import annotations

import pytest
import torch

from avflow_cli.models.attention import (
    WindowedSelfAttention,
    apply_rope,
    banded_window_attention,
    dense_window_attention,
    rope_tables,
)


@pytest.mark.parametrize("left,right,block", [(7, 2, 8), (16, 8, 64), (16, 8, 5), (0, 0, 4), (3, 9, 16)])
def test_banded_equals_dense(left: int, right: int, block: int) -> None:
    g = torch.Generator().manual_seed(left * 100 + right)
    for T in (1, 2, 7, 16, 31, 64, 65, 129, 200):
        q, k, v = (torch.randn(2, 3, T, 8, generator=g) for _ in range(3))
        dense = dense_window_attention(q, k, v, left, right)
        banded = banded_window_attention(q, k, v, left, right, block)
        assert banded.shape == dense.shape
        torch.testing.assert_close(banded, dense, atol=2e-6, rtol=1e-5)


def test_banded_gradients_match_dense_and_are_finite() -> None:
    g = torch.Generator().manual_seed(0)
    T = 37  # not divisible by the block: padded queries must not poison gradients
    base = [torch.randn(1, 2, T, 4, generator=g) for _ in range(3)]
    grads = []
    for fn in (lambda q, k, v: dense_window_attention(q, k, v, 5, 0), lambda q, k, v: banded_window_attention(q, k, v, 5, 0, 8)):
        qkv = [b.clone().requires_grad_(True) for b in base]
        fn(*qkv).square().sum().backward()
        grads.append([t.grad for t in qkv])
    for a, b in zip(*grads):
        assert torch.isfinite(b).all()
        torch.testing.assert_close(b, a, atol=1e-5, rtol=1e-4)


def test_window_is_respected() -> None:
    """Changing a key outside the window leaves the output unchanged; inside, it changes."""
    att = WindowedSelfAttention(16, 2, left=3, right=1, block=4).eval()
    x = torch.randn(1, 30, 16)
    y = att(x)
    x2 = x.clone()
    x2[0, 20] += 5.0
    y2 = att(x2)
    changed = (y2 - y).abs().amax(-1)[0] > 1e-6  # (T,)
    assert changed.nonzero().flatten().tolist() == [19, 20, 21, 22, 23]  # queries i with i-3 <= 20 <= i+1


def test_rope_is_interleaved_rotation_of_pairs() -> None:
    T, D = 5, 8
    cos, sin = rope_tables(T, D, 1e4, torch.device("cpu"))
    x = torch.zeros(1, T, 1, D)
    x[..., 2] = 1.0  # pair k = 1 → (x[2], x[3])
    y = apply_rope(x, cos, sin)
    theta1 = 1e4 ** (-2 / D)
    pos = torch.arange(T, dtype=torch.float32)
    torch.testing.assert_close(y[0, :, 0, 2], torch.cos(pos * theta1))
    torch.testing.assert_close(y[0, :, 0, 3], torch.sin(pos * theta1))
    assert y[..., [0, 1, 4, 5, 6, 7]].abs().max() == 0
