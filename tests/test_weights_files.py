"""The one safetensors writer and reader (avflow_cli/weights.py) behind every weights folder."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest
import torch

from avflow_cli.errors import InputFileError
from avflow_cli.weights import load_safetensors, save_safetensors

PACKAGE = Path(__file__).resolve().parents[1] / "avflow_cli"


def test_round_trip_is_atomic_and_shareable(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        path = save_safetensors(tmp_path / "model.safetensors", {"w": torch.arange(6.0).view(2, 3).t()}, {"step": 3})
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # safetensors alone creates 0600
    torch.testing.assert_close(load_safetensors(path)["w"], torch.arange(6.0).view(2, 3).t())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.safetensors"]  # no temporary left


def test_a_failed_write_leaves_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import safetensors.torch

    path = save_safetensors(tmp_path / "model.safetensors", {"w": torch.ones(2)})

    def half_written(tensors: dict, filename: str, metadata: dict | None = None) -> None:
        Path(filename).write_bytes(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(safetensors.torch, "save_file", half_written)
    with pytest.raises(OSError, match="disk full"):
        save_safetensors(path, {"w": torch.zeros(2)})
    torch.testing.assert_close(load_safetensors(path)["w"], torch.ones(2))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.safetensors"]


@pytest.mark.parametrize("content, message", [(None, r"file not found \(student weights\)"),
                                              (b"\x00" * 20, "not a readable safetensors file")])
def test_bad_files_are_one_line_errors(tmp_path: Path, content: bytes | None, message: str) -> None:
    path = tmp_path / "model.safetensors"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(InputFileError, match=message) as info:
        load_safetensors(path, "student weights")
    assert info.value.path == path and "\n" not in str(info.value)


def test_every_weights_folder_goes_through_it() -> None:
    """Model directories, the student vocoder and avatar folders: no second safetensors writer or reader."""
    direct = [str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py") if p.name != "weights.py"
              and re.search(r"\b(save_file|load_file)\b|from safetensors", p.read_text(encoding="utf-8"))]
    assert direct == []


def test_the_student_vocoder_folder_is_written_atomically(tmp_path: Path) -> None:
    from avflow_cli.audio.student_vocoder import StudentConfig, StudentGenerator, load_student, save_student

    model = StudentGenerator(StudentConfig(channels=8, intermediate=16, blocks=1))
    save_student(model, tmp_path / "student", meta={"steps": 1})
    files = sorted(p.name for p in (tmp_path / "student").iterdir())
    assert files == ["config.json", "model.safetensors"]
    assert all(stat.S_IMODE(p.stat().st_mode) & 0o044 for p in (tmp_path / "student").iterdir())
    assert load_student(tmp_path / "student").cfg == model.cfg
