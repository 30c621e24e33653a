"""``avflow render`` never overwrites without --force, never its own inputs, and refuses motion
files that would need unbounded memory or are damaged, in one line."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from avflow_cli import constants as K
from avflow_cli.cli.main import app
from avflow_cli.render.demo_avatar import FaceDecoder

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")


def _run(*args: str) -> object:
    return CliRunner().invoke(app, ["render", *args])


def _one_error(res: object) -> str:
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert res.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error:"), res.output
    return lines[0]


@pytest.fixture()
def demo_out(tmp_path: Path) -> Path:
    """A synth-like folder drawn by the demo avatar: motion.npz, speech.wav, meta.json, face_decoder.npz."""
    out = tmp_path / "out"
    out.mkdir()
    decoder = FaceDecoder.create()
    decoder.save(out / "face_decoder.npz")
    np.savez(out / "motion.npz", face=np.zeros((20, decoder.dim), np.float32), fps=np.float64(K.FPS))
    sf.write(out / "speech.wav", np.zeros(5120, np.float32), K.SAMPLE_RATE)
    (out / "meta.json").write_text(json.dumps({"components": {}}))
    return out


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_an_existing_file_needs_force(demo_out: Path, tmp_path: Path) -> None:
    video = tmp_path / "face.mp4"
    video.write_bytes(b"an earlier take")
    args = [str(demo_out), "-o", str(video), "--decoder", str(demo_out / "face_decoder.npz"), "--size", "32"]
    assert "exists; choose a new name or pass --force" in _one_error(_run(*args))
    assert video.read_bytes() == b"an earlier take"
    res = _run(*args, "--force")
    assert res.exit_code == 0, res.output
    assert video.read_bytes()[4:8] == b"ftyp"  # an mp4 now


@pytest.mark.parametrize("name", ["speech.wav", "motion.npz", "meta.json", "face_decoder.npz"])
def test_an_input_is_never_the_output_even_with_force(demo_out: Path, name: str) -> None:
    before = _snapshot(demo_out)
    res = _run(str(demo_out), "-o", str(demo_out / name), "--decoder", str(demo_out / "face_decoder.npz"), "--force")
    assert "which this command reads" in _one_error(res)
    assert _snapshot(demo_out) == before


def test_an_explicit_audio_file_is_never_the_output(demo_out: Path, tmp_path: Path) -> None:
    voice = tmp_path / "voice.wav"
    sf.write(voice, np.zeros(2560, np.float32), K.SAMPLE_RATE)
    res = _run(str(demo_out / "motion.npz"), "-o", str(voice), "--audio", str(voice), "--force",
               "--decoder", str(demo_out / "face_decoder.npz"))
    assert "which this command reads" in _one_error(res)
    assert sf.info(voice).frames == 2560


def _claiming(path: Path, frames: int, dim: int, fps: float | None = None) -> Path:
    """An npz whose 'face' header claims (frames, dim) float32 but whose data is compressed zeros."""
    arrays = {"face": np.zeros((frames, dim), np.float32)}
    if fps is not None:
        arrays["fps"] = np.float64(fps)
    np.savez_compressed(path, **arrays)
    return path


def test_a_small_file_claiming_millions_of_frames_is_refused_from_its_header(demo_out: Path, tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    big = _claiming(tmp_path / "big.npz", 5_000_000, 2)  # 40 MB of zeros → ~40 KB on disk
    assert big.stat().st_size < 200_000
    loaded = []
    real_load = np.load
    monkeypatch.setattr(np, "load", lambda *a, **k: loaded.append(a) or real_load(*a, **k))
    out = tmp_path / "v.mp4"
    res = _run(str(big), "-o", str(out), "--decoder", str(demo_out / "face_decoder.npz"))
    assert "5,000,000 frames" in _one_error(res) and not out.exists()
    assert loaded == []  # refused from the header, nothing decompressed


def test_a_tiny_frame_rate_is_refused(demo_out: Path, tmp_path: Path) -> None:
    slow = _claiming(tmp_path / "slow.npz", 10, FaceDecoder.create().dim, fps=1e-6)
    res = _run(str(slow), "-o", str(tmp_path / "v.mp4"), "--decoder", str(demo_out / "face_decoder.npz"))
    assert "fps 1e-06 is outside" in _one_error(res)


def test_a_damaged_npz_is_one_line(demo_out: Path, tmp_path: Path) -> None:
    good = (demo_out / "motion.npz").read_bytes()
    cut = tmp_path / "cut.npz"
    cut.write_bytes(good[: len(good) // 2])  # truncated: no central directory (BadZipFile)
    flipped = tmp_path / "flipped.npz"
    with zipfile.ZipFile(flipped, "w", zipfile.ZIP_DEFLATED) as z:  # a member whose bytes are damaged
        z.writestr("face.npy", b"\x93NUMPY" + b"garbage" * 20)
    for bad in (cut, flipped):
        res = _run(str(bad), "-o", str(tmp_path / "v.mp4"), "--decoder", str(demo_out / "face_decoder.npz"))
        assert "not a readable .npz file" in _one_error(res)
    assert not (tmp_path / "v.mp4").exists()


def test_an_object_array_is_refused_without_unpickling(demo_out: Path, tmp_path: Path) -> None:
    evil = tmp_path / "evil.npz"
    np.savez(evil, face=np.array([{"a": 1}] * 3, dtype=object))
    res = _run(str(evil), "-o", str(tmp_path / "v.mp4"), "--decoder", str(demo_out / "face_decoder.npz"))
    assert "holds Python objects" in _one_error(res)


def test_a_damaged_decoder_or_mesh_is_one_line(demo_out: Path, tmp_path: Path) -> None:
    """Every npz render reads: the demo face decoder and an avatar's topology.npz."""
    from avflow_cli.render.obj import Topology

    decoder = tmp_path / "face_decoder.npz"
    decoder.write_bytes((demo_out / "face_decoder.npz").read_bytes()[:300])
    res = _run(str(demo_out), "-o", str(tmp_path / "v.mp4"), "--decoder", str(decoder))
    assert "not a demo face decoder" in _one_error(res)
    np.savez(tmp_path / "whole.npz", v=np.zeros((3, 3)), vt=np.zeros((3, 2)), vi=np.zeros((1, 3), int),
             vti=np.zeros((1, 3), int))
    (tmp_path / "topology.npz").write_bytes((tmp_path / "whole.npz").read_bytes()[:-30])  # truncated: BadZipFile
    with pytest.raises(Exception, match="not a mesh topology file") as err:
        Topology.load_npz(tmp_path / "topology.npz")
    assert type(err.value).__name__ == "InputFileError"


def test_a_one_dimensional_giant_is_refused_from_its_header(demo_out: Path, tmp_path: Path) -> None:
    flat = tmp_path / "flat.npz"
    np.savez_compressed(flat, face=np.zeros(20_000_000, np.uint8))  # 20 M values, ~20 KB on disk
    res = _run(str(flat), "-o", str(tmp_path / "v.mp4"), "--decoder", str(demo_out / "face_decoder.npz"))
    assert "'face' must be a non-empty (T, F) number array, got (20000000,)" in _one_error(res)
