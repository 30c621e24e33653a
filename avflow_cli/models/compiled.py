"""``torch.compile`` for AV-Flow sampling, with a clean fallback to eager.

On CPU, inductor turns the elementwise work between the GEMMs (LayerNorm + modulation, RoPE,
gated residuals, GELU) into a few fused C++ loops; on CUDA the same, plus CUDA graphs with
``mode="reduce-overhead"``. Compilation needs a working C++ compiler (CPU) or Triton (CUDA); when
it fails, or the compiled output does not match eager, :func:`compile_model` says why and the
caller keeps the eager module: never a crash, never a silently different result.
"""

from __future__ import annotations

import torch
from torch import nn

MATCH_ATOL = 1e-4  # compiled vs eager on the example input (fp32; reassociated sums differ slightly)


def compile_model(model: nn.Module, example: tuple[torch.Tensor, ...], mode: str | None = None,
                  bf16: bool = False) -> tuple[nn.Module | None, str]:
    """(compiled module, "") or (None, reason). Runs ``example`` once to compile and compare."""
    try:
        compiled = torch.compile(model, mode=mode, dynamic=False)
        dev = example[0].device.type
        with torch.inference_mode(), torch.autocast(dev, dtype=torch.bfloat16, enabled=bf16):
            got = compiled(*example)
            want = model(*example)
    except Exception as err:  # noqa: BLE001 - any backend failure means: stay eager
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        return None, f"{type(err).__name__}: {first[:200]}"
    tol = 5e-2 if bf16 else MATCH_ATOL
    diff = float((got.float() - want.float()).abs().max())
    if not diff <= tol * max(1.0, float(want.float().abs().max())):
        return None, f"compiled output differs from eager by {diff:.2e}"
    return compiled, ""
