"""The qkv GEMM writes straight into the attention's padded buffer, and the floor benchmark still sees it."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

from avflow_cli.models.attention import WindowedSelfAttention


def _floor_module():
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "floor.py"
    spec = importlib.util.spec_from_file_location("avflow_benchmark_floor", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # its dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("T", [40, 37])  # a whole number of blocks, and padding after the last block
def test_direct_buffer_equals_the_padded_copy(T: int) -> None:
    """Inference (GEMM into the buffer, in-place RoPE) equals the differentiable training path."""
    torch.manual_seed(0)
    attn = WindowedSelfAttention(32, 4, left=3, right=2, block=8)
    x = torch.randn(1, T, 32)
    plan = attn.plan(x)
    with torch.no_grad():
        direct = plan.project_qkv(x, attn.qkv)
        fast = attn(x, plan)
    copied = plan.pad_rows(attn.qkv(x))
    assert direct.shape == (3 + plan.padded + 2, 96)
    assert torch.equal(direct, copied.detach())  # zeros where the padding is, the GEMM rows bit-equal
    trained = attn(x, plan)  # grad enabled: the padded-copy path
    assert trained.requires_grad
    torch.testing.assert_close(fast, trained.detach(), rtol=0, atol=1e-6)


def test_autocast_takes_the_padded_copy_path() -> None:
    """Under autocast the qkv GEMM goes through autocast (cached bf16 weights), not an out= GEMM."""
    torch.manual_seed(0)
    attn = WindowedSelfAttention(32, 4, left=3, right=2, block=8)
    x = torch.randn(1, 37, 32)
    plan = attn.plan(x)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        buf = plan.project_qkv(x, attn.qkv)
        want = attn.qkv(x)[0]
    assert buf.dtype == torch.bfloat16 and buf.shape == (plan.rows, 96)
    assert torch.equal(buf[3: 3 + 37], want) and not buf[:3].any() and not buf[3 + 37:].any()


def test_floor_records_the_out_gemm_with_its_flops() -> None:
    """The benchmark floor must count the GEMM that writes into the buffer (aten.addmm.out)."""
    floor = _floor_module()
    torch.manual_seed(0)
    attn = WindowedSelfAttention(32, 4, left=3, right=2, block=8).eval()
    x = torch.randn(1, 37, 32)

    def step() -> torch.Tensor:
        with torch.no_grad():
            return attn(x)

    calls = floor.record_gemms(step)
    assert torch.ops.aten.addmm.out in [c.op for c in calls]
    total, _ = floor.count_flops(step)
    assert sum(c.flops() for c in calls) == pytest.approx(total)  # qkv (32→96) + out (32→32), 2·M·N·K each
    assert total == 2 * 37 * 32 * (96 + 32)
    floor.GemmReplay(calls)()  # replays, out= buffer included
