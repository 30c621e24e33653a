"""read_json_config: the one reader of user-supplied JSON configs (vocoders), and its one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from avflow_cli.errors import InputFileError
from avflow_cli.jsonfile import read_json_config


def test_reads_any_json_value(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text('{"hop": 256, "kind": "x"}')
    assert read_json_config(path) == {"hop": 256, "kind": "x"}
    path.write_text("[1, 2]")
    assert read_json_config(str(path)) == [1, 2]  # shape checks are the caller's


@pytest.mark.parametrize("content, message", [
    (None, "config.json not found"),
    (b"{not json", "not a readable JSON config"),
    (b"\xff\xfe\x00", "not a readable JSON config"),
])
def test_bad_files_are_one_line_errors(tmp_path: Path, content: bytes | None, message: str) -> None:
    path = tmp_path / "config.json"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(InputFileError, match=message) as info:
        read_json_config(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_a_folder_is_unreadable(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="not a readable JSON config"):
        read_json_config(tmp_path)
