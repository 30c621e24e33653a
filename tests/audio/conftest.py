"""Fixtures shared by the audio tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def no_checkpoints(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No pretrained weights anywhere: an empty avflow checkpoint folder and torch hub for this test."""
    monkeypatch.setenv("AVFLOW_CHECKPOINTS", str(tmp_path / "ckpt"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    (tmp_path / "ckpt").mkdir()
    return tmp_path / "ckpt"
