"""Model sizes no network can be built with are one-line errors (were ZeroDivisionError tracebacks)."""

from __future__ import annotations

import pytest

from avflow_cli.errors import AvflowError
from avflow_cli.models.config import AVFlowConfig, HeadVAEConfig


@pytest.mark.parametrize("field", ["d_model", "heads", "hidden_dim", "depth", "face_dim", "steps"])
def test_avflow_sizes_must_be_positive(field: str) -> None:
    with pytest.raises(AvflowError, match=f"model.{field} must be at least 1"):
        AVFlowConfig(**{field: 0}).validate()


@pytest.mark.parametrize("field", ["heads", "hidden", "layers", "ff_dim"])
def test_head_vae_sizes_must_be_positive(field: str) -> None:
    with pytest.raises(AvflowError, match=f"model.{field} must be at least 1"):
        HeadVAEConfig(**{field: 0}).validate()


@pytest.mark.parametrize("field", ["n_heads", "n_layers", "n_channels", "num_heads"])
def test_text_to_tokens_sizes_must_be_positive(field: str) -> None:
    from avflow_cli.models.text2tokens.config import preset

    cfg = preset("tiny")
    setattr(cfg, field, 0)  # n_heads=0 was a ZeroDivisionError traceback
    with pytest.raises(AvflowError, match=f"model.{field} must be at least 1"):
        cfg.validate()
