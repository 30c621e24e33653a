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


@pytest.mark.parametrize("content, message", [
    (None, "file not found"),
    (b"{not json", "corrupt JSON"),
    (b"\xff\xfe\x00\x81", "corrupt JSON"),  # binary: a decode error, not a traceback
    ("dir", "cannot read"),
])
def test_read_json_errors_name_the_file(tmp_path: Path, content: bytes | str | None, message: str) -> None:
    from avflow_cli.jsonfile import read_json

    path = tmp_path / "session.json"
    if content == "dir":
        path.mkdir()
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(InputFileError, match=message) as info:
        read_json(path)
    assert info.value.path == path and "\n" not in str(info.value)


def test_every_reader_of_a_json_file_it_was_handed_uses_jsonfile(tmp_path: Path) -> None:
    """A binary session.json, index.json, model or avatar config.json or metrics.json is one line, not a traceback."""
    from avflow_cli.data.prep import load_session
    from avflow_cli.data.schema import ShardIndex
    from avflow_cli.metrics.report import load_result
    from avflow_cli.models.registry import read_config
    from avflow_cli.render.avatar import CodecAvatar

    for folder, name, read in [("session", "session.json", load_session), ("shards", "index.json", ShardIndex.load),
                               ("model", "config.json", read_config), ("run", "metrics.json", load_result),
                               ("avatar", "config.json", CodecAvatar.load)]:
        (tmp_path / folder).mkdir()
        (tmp_path / folder / name).write_bytes(b"\x89PNG\r\n\x1a\n\xff")
        with pytest.raises(InputFileError, match="corrupt JSON"):
            read(tmp_path / folder)
