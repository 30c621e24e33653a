"""The face decoders travel with the data: one function for sessions → shards → model directory."""

from __future__ import annotations

import os
from pathlib import Path

from avflow_cli.render.avatar import carry_face_decoders
from avflow_cli.render.demo_avatar import FACE_DECODER_FILE


def test_decoder_is_copied_once_and_replaced_only_when_it_differs(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    dst.mkdir()
    assert carry_face_decoders(src, dst) is None and not (dst / FACE_DECODER_FILE).exists()  # nothing to carry
    (src / FACE_DECODER_FILE).write_bytes(b"decoder v1")
    copy = carry_face_decoders(src, dst)
    assert copy == dst / FACE_DECODER_FILE and copy.read_bytes() == b"decoder v1"
    os.utime(copy, ns=(1, 1))
    assert carry_face_decoders(src, dst) == copy and copy.stat().st_mtime_ns == 1  # same bytes: left alone
    (src / FACE_DECODER_FILE).write_bytes(b"decoder v2")
    assert carry_face_decoders(src, dst).read_bytes() == b"decoder v2"  # the data's decoder changed
    assert sorted(p.name for p in dst.iterdir()) == [FACE_DECODER_FILE]  # no temporary file left behind
