"""Every shipped file is recorded with its sha256 in its folder's README, and matches it (issue 22)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from avflow_cli import shipped


def test_every_shipped_folder_matches_its_readme() -> None:
    folders = shipped.shipped_folders()
    assert shipped.RESOURCES / "pretrained_demo" in folders and shipped.student_vocoder_dir() in folders
    for folder in folders:
        assert shipped.recorded_checksums(folder), f"{folder}/README.md records no sha256"
        assert shipped.checksum_problems(folder) == []


def test_a_changed_added_or_missing_file_is_reported(tmp_path: Path) -> None:
    folder = tmp_path / "vocoder_student"
    shutil.copytree(shipped.student_vocoder_dir(), folder)
    assert shipped.checksum_problems(folder) == []
    (folder / "quality.json").write_text("{}")
    (folder / "extra.bin").write_bytes(b"\0")
    (folder / "config.json").unlink()
    problems = " | ".join(shipped.checksum_problems(folder))
    assert "quality.json: sha256 differs" in problems and "extra.bin: not listed" in problems
    assert "config.json: listed in README.md, missing" in problems


@pytest.mark.parametrize("line, parsed", [
    ("a" * 64 + "  avflow/model.safetensors", {"avflow/model.safetensors": "a" * 64}),
    ("a" * 64 + " *t2t/config.json", {"t2t/config.json": "a" * 64}),  # sha256sum's binary mark
    ("the hash " + "a" * 64 + " appears in prose", {}),
])
def test_checksum_lines_are_sha256sum_lines(tmp_path: Path, line: str, parsed: dict[str, str]) -> None:
    (tmp_path / "README.md").write_text(f"# x\n\n```\n{line}\n```\n")
    assert shipped.recorded_checksums(tmp_path) == parsed
