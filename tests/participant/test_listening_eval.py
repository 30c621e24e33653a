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
    res = _script("stream_quality").main(["--model", str(guided_model), "--data", str(shards), "--frames", "120",
                                          "--no-wer", "--vocoder", "griffinlim", "--chunk", "16"])
    assert res["exact_max_abs_mel_deviation"] <= 1e-5
    assert res["offline"]["MCD"] > 0 and res["low-latency"]["MCD"] > 0 and res["MCD_low_latency_vs_offline"] >= 0
    assert res["delta"]["MCD"] == res["low-latency"]["MCD"] - res["offline"]["MCD"]
    assert res["offline"]["lip_F1"] is not None
