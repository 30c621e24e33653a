"""``eval --from-dir`` on synthetic shards: perfect outputs score perfectly, re-runs use the cache."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from avflow_cli.cli.main import app
from avflow_cli.data.schema import ShardIndex
from avflow_cli.data.shards import read_clip
from avflow_cli.errors import AvflowError
from avflow_cli.evaluate import ClipScorer, EvalSettings, evaluate_dir
from avflow_cli.metrics.generated import ClipPrediction, load_prediction, save_prediction

runner = CliRunner()


def _write_gen(shards: Path, gen: Path, *, noise: float = 0.0, seed: int = 0) -> list[str]:
    """A GEN folder holding the ground truth of every test clip (plus optional noise)."""
    rng = np.random.default_rng(seed)
    ids = []
    for rec in ShardIndex.load(shards).split("test"):
        clip = read_clip(shards, rec)
        face = clip["face"] + noise * rng.normal(size=clip["face"].shape).astype(np.float32)
        save_prediction(gen / rec.id, ClipPrediction(face=face, head_pose=clip["head_pose"], mel=clip["mel"],
                                                     meta={"text": "hello", "seconds": 4.0, "timings_s": {"avflow": 0.5}}))
        ids.append(rec.id)
    return ids


def _decoder(tmp: Path, face_dim: int) -> Path:
    """A linear face decoder whose thresholds sit inside the synthetic codes' range."""
    W = np.zeros((face_dim, 2), np.float32)
    W[0, 0], W[1, 1] = 1.0, 1.0
    np.savez(tmp / "dec.npz", W=W, b=np.zeros(2), lip_closed_threshold=0.0, smile_threshold=0.0)
    return tmp / "dec.npz"


def test_perfect_outputs_score_perfectly_and_rerun_uses_cache(synthetic_shards, tmp_path, monkeypatch) -> None:
    gen = tmp_path / "gen"
    ids = _write_gen(synthetic_shards, gen)
    settings = EvalSettings(face_decoder=str(_decoder(tmp_path, 16)), wer=False, plots=1)
    res = evaluate_dir(gen, synthetic_shards, settings=settings, name="perfect", show_progress=False)
    m, gt = res["metrics"], res["ground_truth"]
    assert res["clips"] == len(ids) == 1
    assert m["F1_lips"] == 1.0 and m["F1_smiles"] == 1.0
    assert m["FD_e"] == pytest.approx(0.0, abs=1e-6)
    assert m["MCD"] == pytest.approx(0.0, abs=1e-9)
    assert m["Div_e"] == pytest.approx(gt["Div_e"]) and m["Div_h"] == pytest.approx(gt["Div_h"])
    assert m["BC_e"] == pytest.approx(gt["BC_e"]) and m["BC_h"] == pytest.approx(gt["BC_h"])
    assert m["WER"] is None
    assert res["speed"]["avflow"] == pytest.approx(0.5 * 20 / 4.0)
    out = gen / "eval"
    assert json.loads((out / "metrics.json").read_text())["name"] == "perfect"
    assert "| perfect |" in (out / "metrics.md").read_text()
    assert (out / "plots" / f"{ids[0]}.png").stat().st_size > 1000

    def boom(*args, **kwargs):
        raise AssertionError("cached clip was scored again")

    monkeypatch.setattr(ClipScorer, "score", boom)
    again = evaluate_dir(gen, synthetic_shards, settings=settings, name="perfect", show_progress=False)
    assert again["metrics"] == res["metrics"]
    monkeypatch.undo()
    changed = EvalSettings(face_decoder=settings.face_decoder, wer=False, plots=0, beat_sigma_s=0.3)
    with pytest.raises(AssertionError):  # other settings invalidate the cache
        monkeypatch.setattr(ClipScorer, "score", boom)
        evaluate_dir(gen, synthetic_shards, settings=changed, show_progress=False)


def test_noisy_outputs_are_worse(synthetic_shards, tmp_path) -> None:
    gen = tmp_path / "noisy"
    _write_gen(synthetic_shards, gen, noise=0.5)
    res = evaluate_dir(gen, synthetic_shards, settings=EvalSettings(wer=False, plots=0), show_progress=False)
    assert res["metrics"]["FD_e"] > 0.1
    assert res["metrics"]["F1_lips"] is None  # no face decoder beside synthetic shards
    assert res["metrics"]["Div_e"] > res["ground_truth"]["Div_e"]


def test_cli_from_dir_and_compare(synthetic_shards, tmp_path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    _write_gen(synthetic_shards, a)
    _write_gen(synthetic_shards, b, noise=0.3)
    for gen, shards_option in ((a, "--data"), (b, "--truth")):  # --truth: the old name, one release with a note
        r = runner.invoke(app, ["eval", "--from-dir", str(gen), shards_option, str(synthetic_shards), "--no-wer", "--plots", "0"])
        assert r.exit_code == 0, r.output
        assert "FD_e" in r.output
        assert ("--truth is deprecated; use --data" in r.output) == (shards_option == "--truth")
    r = runner.invoke(app, ["eval", "compare", str(a / "eval"), str(b / "eval" / "metrics.json"), "--out", str(tmp_path / "t.md")])
    assert r.exit_code == 0, r.output
    table = (tmp_path / "t.md").read_text()
    assert "| a |" in table and "| b |" in table and "ground truth" in table
    r = runner.invoke(app, ["eval", "compare", str(tmp_path / "nothing")])
    assert r.exit_code == 2 and "no metrics.json" in r.output


def test_user_errors(synthetic_shards, tmp_path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(AvflowError, match="no generated clip folder"):
        evaluate_dir(tmp_path / "empty", synthetic_shards, settings=EvalSettings(wer=False), show_progress=False)
    r = runner.invoke(app, ["eval", "--data", str(synthetic_shards)])
    assert r.exit_code == 2 and "exactly one of" in r.output
    bad = tmp_path / "bad" / "clip"
    bad.mkdir(parents=True)
    np.savez(bad / "motion.npz", face=np.zeros((5, 16), np.float32))
    with pytest.raises(AvflowError, match="neither speech.wav nor"):
        load_prediction(bad)


@pytest.mark.slow
@pytest.mark.skipif(__import__("shutil").which("flite") is None, reason="flite is not installed")
def test_wer_path_with_real_speech(tmp_path, monkeypatch) -> None:
    """flite `slt` speech as both output and truth: WER 0 for generated and vocoded ground truth."""
    monkeypatch.setenv("AVFLOW_EVAL_CACHE", str(tmp_path / "truth_cache"))
    import subprocess

    from avflow_cli.audio.io import read_audio, resample, write_audio
    from avflow_cli.audio.mel import log_mel
    from avflow_cli.constants import SAMPLE_RATE
    from avflow_cli.data.schema import ClipRecord, ShardIndex as Index
    from avflow_cli.data.shards import write_shard

    text = "The quick brown fox jumps over the lazy dog near the river bank."
    subprocess.run(["flite", "-voice", "slt", "-t", text, "-o", str(tmp_path / "slt.wav")], check=True)
    audio, sr = read_audio(tmp_path / "slt.wav")
    wav = resample(audio[0], sr, SAMPLE_RATE).numpy()
    mel = log_mel(wav).numpy()  # (T, 80)
    T = len(mel)
    rng = np.random.default_rng(0)
    clip = {"mel": mel, "tokens": np.zeros((T, 29), np.float32), "face": rng.normal(size=(T, 8)).astype(np.float32),
            "head_pose": np.tile(np.array([1, 0, 0, 0, 0, 0, 1000], np.float32), (T, 1)), "valid": np.ones(T, bool)}
    shards = tmp_path / "shards"
    write_shard(shards / "shard-00000.h5", {"c0": clip})
    Index(clips=[ClipRecord(id="c0", shard="shard-00000.h5", frames=T, split="test")], dims={"face": 8}).save(shards)
    gen = tmp_path / "gen"
    save_prediction(gen / "c0", ClipPrediction(face=clip["face"], head_pose=clip["head_pose"], wav=wav))
    (tmp_path / "texts.json").write_text(json.dumps({"c0": text}))
    res = evaluate_dir(gen, shards, settings=EvalSettings(wer=True, plots=0, texts=str(tmp_path / "texts.json")),
                       show_progress=False)
    assert res["metrics"]["WER"] == 0.0
    assert res["ground_truth"]["WER"] <= 0.2  # the truth goes through the vocoder first
    assert res["settings"]["asr_backend"] and res["settings"]["wer_reference"] == "text"
    assert res["metrics"]["MCD"] < 1.0  # the same audio: only STFT framing of the resampled wav differs
    assert len(list((tmp_path / "truth_cache").glob("*.json"))) == 1  # the truth's transcript is shared


def test_reference_text_from_session_transcript(tmp_path) -> None:
    from avflow_cli.constants import FPS
    from avflow_cli.data.schema import ClipRecord
    from avflow_cli.evaluate import transcript_text

    turns = [
        {"speaker": "actor", "start": 0.5, "end": 2.0, "text": "first words."},
        {"speaker": "participant", "start": 2.0, "end": 2.5, "text": "uh huh"},
        {"speaker": "actor", "start": 9.0, "end": 12.0, "text": "mostly outside"},
        {"speaker": "actor", "start": 3.0, "end": 4.0, "text": "second"},
    ]
    (tmp_path / "transcript.json").write_text(json.dumps({"turns": turns}))
    rec = ClipRecord(id="c", shard="s.h5", frames=int(10 * FPS), split="test", start_frame=0, source=str(tmp_path))
    assert transcript_text(rec) == "first words. second"
    assert transcript_text(ClipRecord(id="c", shard="s.h5", frames=10, split="test")) is None


def test_demo_face_decoder_plugs_in(tmp_path) -> None:
    from avflow_cli.metrics.face_decoder import load_mouth_decoder
    from avflow_cli.render.demo_avatar import LIP_CLOSED_THRESHOLD, FaceDecoder

    dec = FaceDecoder.create()
    dec.save(tmp_path / "face_decoder.npz")
    mouth = load_mouth_decoder(tmp_path / "face_decoder.npz")
    codes = np.random.default_rng(0).normal(size=(20, dec.dim)).astype(np.float32)
    assert mouth.name == "demo-avatar" and mouth.lip_closed_threshold == LIP_CLOSED_THRESHOLD
    np.testing.assert_allclose(mouth.lip_distance(codes), dec.lip_distance(codes), rtol=1e-6)
    np.testing.assert_allclose(mouth.mouth_corner_distance(codes), dec.mouth_corner_distance(codes), rtol=1e-6)
