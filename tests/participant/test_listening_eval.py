"""The guidance table and the stream-quality benchmark run on any model + shards (a tiny model here)."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np

from avflow_cli.participant.evaluate import listening_mask, participant_beats


def _script(name: str):
    path = Path(__file__).resolve().parents[2] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_listening_mask_and_participant_beats() -> None:
    from avflow_cli.audio.alignment_tokens import ctc_logits

    tokens = ctc_logits([("HELLO", 0.5, 1.0), ("THERE", 3.0, 3.5)], 250)  # 5 s at 50 Hz
    from avflow_cli.data.resample import resample_to_fps

    fps_tokens = resample_to_fps(tokens, 50.0)
    listen = listening_mask(fps_tokens)
    t = np.arange(len(listen)) / 86.1328125
    assert not listen[(t > 0.6) & (t < 0.9)].any() and listen[(t > 1.6) & (t < 2.6)].all()
    beats = participant_beats(fps_tokens) / 86.1328125
    assert len(beats) >= 2 and ((beats > 0.4) & (beats < 1.1)).any() and ((beats > 2.9) & (beats < 3.6)).any()


def dialogue_shards(src: Path, dst: Path) -> Path:
    """A copy of the synthetic shards whose test clips have the actor silent (blank tokens) in frames
    60-200, so there is listening to score (synthetic clips talk all the time)."""
    import shutil

    import h5py

    from avflow_cli.audio.alignment_tokens import ctc_logits
    from avflow_cli.data.schema import ShardIndex

    shutil.copytree(src, dst)
    blank = ctc_logits([], 1)[0]
    for rec in ShardIndex.load(dst).split("test"):
        with h5py.File(dst / rec.shard, "r+") as f:
            tok = f[rec.id]["tokens"][:]
            tok[60:200] = blank
            f[rec.id]["tokens"][...] = tok
    return dst


def test_guidance_table_on_a_tiny_model(guided_model: Path, tmp_path: Path) -> None:
    shards = dialogue_shards(guided_model.parent / "shards", tmp_path / "shards")
    out = tmp_path / "guidance.md"
    res = _script("guidance_eval").main(["--model", str(guided_model), "--data", str(shards), "--frames", "200",
                                         "--out", str(out)])
    assert list(res["variants"]) == ["audio+visual", "audio only", "visual only", "none"]
    for row in res["variants"].values():
        assert row["listening_frames"] > 0 and (math.isnan(row["smile_return_f1"]) or 0 <= row["smile_return_f1"] <= 1)
        assert row["bc_h_listening"] is not None and 0 <= row["bc_h_listening"] <= 1
    # guidance channels change what the avatar does while listening
    rows = res["variants"]
    assert rows["audio+visual"]["counts"] != rows["none"]["counts"] or rows["audio+visual"]["bc_h_listening"] != rows["none"]["bc_h_listening"]
    assert out.read_text().startswith("| guidance |") and out.with_suffix(".json").is_file()


def test_stream_quality_on_a_tiny_model(guided_model: Path) -> None:
    shards = guided_model.parent / "shards"
    mod = _script("stream_quality")
    res = mod.main(["--model", str(guided_model), "--data", str(shards), "--frames", "120", "--no-wer",
                    "--vocoder", "griffinlim", "--chunk", "16", "--lookahead", "default", "0", "--reference-seed", "1"])
    assert res["exact_max_abs_mel_deviation"] <= 1e-5
    rows = {r["name"]: r for r in res["rows"]}
    la = res["default_lookahead"]
    assert list(rows) == ["offline", f"low-latency la {la}", "low-latency la 0", "offline seed 1"]
    assert rows["offline"]["MCD"] > 0 and rows["offline"]["lip_F1"] is not None and rows["offline"]["WER"] is None
    for name in list(rows)[1:]:
        row = rows[name]
        assert row["delta"]["MCD"] == row["MCD"] - rows["offline"]["MCD"] and row["MCD_vs_offline"] >= 0
        assert len(row["per_clip"]["MCD"]) == res["clips"]
    assert rows[f"low-latency la {la}"]["latency_frames"] == 16 + la and rows["low-latency la 0"]["latency_frames"] == 16
    # a different noise draw moves the output further than streaming with the full look-ahead does
    assert rows["offline seed 1"]["MCD_vs_offline"] > rows[f"low-latency la {la}"]["MCD_vs_offline"]
    table = mod.markdown(res)
    assert table.count("\n") == 5 and "| low-latency la 0 | 16 fr = 186 ms |" in table


def test_stream_quality_lookahead_option() -> None:
    import argparse

    import pytest

    mod = _script("stream_quality")
    assert mod.lookahead_arg("default") is None and mod.lookahead_arg("4") == 4
    for bad in ("-1", "soon"):
        with pytest.raises(argparse.ArgumentTypeError):
            mod.lookahead_arg(bad)


def test_clip_text_finds_a_relative_session_and_cuts_to_the_window(tmp_path: Path, monkeypatch) -> None:
    """prep records the session path as given (relative to where it ran): the actor's words are still
    found from another working directory, and a clip cut to its first frames keeps only their turns."""
    import json

    from avflow_cli import constants as K
    from avflow_cli.data.schema import ClipRecord
    from avflow_cli.evaluate import session_dir, transcript_text
    from avflow_cli.participant.evaluate import clip_text

    session = tmp_path / "run" / "corpus" / "s0"
    session.mkdir(parents=True)
    turns = [{"speaker": "actor", "start": 0.5, "end": 2.0, "text": "first words"},
             {"speaker": "participant", "start": 2.5, "end": 3.0, "text": "yes"},
             {"speaker": "actor", "start": 6.0, "end": 8.0, "text": "second words"}]
    (session / "transcript.json").write_text(json.dumps({"turns": turns}))
    shards = tmp_path / "run" / "prep" / "shards"
    shards.mkdir(parents=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    frames = int(10 * K.FPS)
    rec = ClipRecord(id="s0--0000", shard="shard-00000.h5", frames=frames, split="test", session="s0",
                     start_frame=0, source="corpus/s0")
    assert session_dir(rec.source, shards) == session.resolve()
    assert session_dir("corpus/missing", shards) is None and session_dir("", shards) is None
    assert clip_text(shards, rec, None, frames) == "first words second words"
    assert clip_text(shards, rec, None, int(4 * K.FPS)) == "first words"
    # a clip's own text is used when it is whole, never for a cut clip
    assert clip_text(shards, rec, "own text", frames) == "own text"
    bare = ClipRecord(id="x", shard="shard-00000.h5", frames=frames, split="test")
    assert clip_text(shards, bare, "own text", frames // 2) is None
    # avflow eval's reference text takes the same route (it silently lost it before)
    assert transcript_text(rec, shards=shards) == "first words second words"
    assert transcript_text(rec) is None  # without the shard folder the relative path is not found from here
