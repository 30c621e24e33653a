"""The CUDA path of AV-Flow: same outputs and gradients as the CPU, bf16 autocast, torch.compile.

Run by ``benchmarks/gpu_check.sh`` (``pytest -m gpu``); skipped with a reason where no GPU is.
"""

from __future__ import annotations

import pytest
import torch

from avflow_cli.models.avflow import AVFlow
from avflow_cli.models.config import AVFlowConfig

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


def _model(**kw) -> AVFlow:
    torch.manual_seed(0)
    cfg = AVFlowConfig(face_dim=12, d_model=64, hidden_dim=128, heads=4, depth=2, window_left=16, window_right=8,
                       attn_block=32, **kw)
    model = AVFlow(cfg)
    with torch.no_grad():  # non-zero AdaLN gates: attention reaches the output
        for name, p in model.named_parameters():
            if name.endswith("_mod.proj.weight"):
                p.normal_(0, 0.05)
    return model


def _inputs(model: AVFlow, B: int = 2, T: int = 157) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(1)
    cfg = model.config
    x, cond = torch.randn(B, T, cfg.x_dim, generator=g), torch.randn(B, T, cfg.cond_dim, generator=g)
    t = torch.rand(B, generator=g)
    mask = torch.ones(B, T, dtype=torch.bool)
    mask[0, T - 40:] = False
    return x, t, cond, mask


@pytest.mark.parametrize("fusion", ["highway", "cascade", "shared"])
def test_cuda_forward_and_gradients_equal_cpu(fusion: str) -> None:
    cpu = _model(fusion=fusion)
    gpu = _model(fusion=fusion).cuda()
    x, t, cond, mask = _inputs(cpu)
    want = cpu(x, t, cond, key_mask=mask)
    got = gpu(x.cuda(), t.cuda(), cond.cuda(), key_mask=mask.cuda())
    torch.testing.assert_close(got.cpu(), want, atol=2e-4, rtol=1e-3)
    want.square().mean().backward()
    got.square().mean().backward()
    for (name, a), b in zip(cpu.named_parameters(), gpu.parameters()):
        assert torch.isfinite(b.grad).all(), name
        torch.testing.assert_close(b.grad.cpu(), a.grad, atol=1e-4, rtol=5e-3, msg=name)


def test_bf16_autocast_is_close_to_fp32() -> None:
    model = _model().cuda().eval()
    x, t, cond, _ = (a.cuda() for a in _inputs(model, B=1, T=1723))
    with torch.inference_mode():
        ref = model(x, t, cond)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            low = model(x, t, cond).float()
    assert ((low - ref).norm() / ref.norm()).item() < 3e-2


def test_compiled_model_matches_eager() -> None:
    from avflow_cli.models.compiled import compile_model

    model = _model().cuda().eval()
    x, t, cond, _ = (a.cuda() for a in _inputs(model, B=1, T=345))
    compiled, why = compile_model(model, (x, t, cond))
    assert compiled is not None, why
    with torch.inference_mode():
        torch.testing.assert_close(compiled(x, t, cond), model(x, t, cond), atol=1e-4, rtol=1e-3)
