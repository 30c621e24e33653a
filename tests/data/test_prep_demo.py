"""The built-in demo corpus through `avflow prep all` (slow: generates the corpus first)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from avflow_cli.cli.main import app
from avflow_cli.data.schema import ShardIndex
from avflow_cli.data.verify import verify_shards
from avflow_cli.render.demo_avatar import NUM_PARAMS

pytestmark = [pytest.mark.slow, pytest.mark.skipif(shutil.which("flite") is None, reason="flite is not installed")]


def test_demo_corpus_to_verified_shards(tmp_path: Path) -> None:
    from avflow_cli.data.demo_corpus import generate_corpus

    corpus = tmp_path / "corpus"
    generate_corpus(corpus, minutes=1.5, seed=3, session_seconds=30, size=64, show_progress=False)
    out = tmp_path / "prep"
    result = CliRunner().invoke(app, ["prep", "all", str(corpus), str(out), "--max-clip-seconds", "20"])
    assert result.exit_code == 0, result.output
    index = ShardIndex.load(out / "shards")
    assert {c.split for c in index.clips} == {"train", "val", "test"}
    assert index.dims["face"] == NUM_PARAMS and index.dims["p_smirk"] == 56
    assert (out / "shards" / "face_decoder.npz").is_file()
    assert verify_shards(out / "shards").ok
    for vad_json in (out / "sessions").glob("*/vad.json"):  # separation quality where the truth is known
        scores = json.loads(vad_json.read_text())["scores"]
        assert scores["actor"]["f1"] > 0.93 and scores["participant"]["f1"] > 0.9, scores
