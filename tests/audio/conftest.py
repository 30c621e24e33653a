"""Fixtures shared by the audio tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf


@pytest.fixture
def no_checkpoints(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No pretrained weights anywhere: an empty avflow checkpoint folder and torch hub for this test."""
    monkeypatch.setenv("AVFLOW_CHECKPOINTS", str(tmp_path / "ckpt"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    (tmp_path / "ckpt").mkdir()
    return tmp_path / "ckpt"


@pytest.fixture(scope="module")
def wav_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two short harmonic 'utterances' at 16 kHz (the command resamples)."""
    root = tmp_path_factory.mktemp("wavs")
    sr = 16000
    t = np.arange(int(0.6 * sr)) / sr
    for i, f0 in enumerate((140.0, 210.0)):
        x = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 6)) * 0.2 * np.hanning(len(t))
        sf.write(root / f"utt{i}.wav", x.astype(np.float32), sr)
    return root
