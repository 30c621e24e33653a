"""benchmarks/real_frontends.py refuses what it cannot score, with a line each (no real data needed)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest


def _bench():
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "real_frontends.py"
    spec = importlib.util.spec_from_file_location("avflow_benchmark_real_frontends", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def test_empty_transcripts_and_silent_audio_are_left_out_with_a_note(capsys: pytest.CaptureFixture[str]) -> None:
    bench = _bench()
    speech = np.sin(np.linspace(0, 2000, 16000)).astype(np.float32) * 0.3
    assert bench.usable("a", speech, "hello there")
    assert not bench.usable("b", speech, "  ")
    assert not bench.usable("c", np.zeros(16000, np.float32), "hello there")
    assert not bench.usable("d", np.zeros(0, np.float32), "hello there")
    err = capsys.readouterr().err
    assert "b: empty transcript, left out" in err and "c: silent audio, left out" in err and "d: silent audio" in err


def test_missing_data_unknown_sections_and_a_broken_textgrid_are_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                             capsys: pytest.CaptureFixture[str]) -> None:
    bench = _bench()
    monkeypatch.setenv("AVFLOW_REAL_DATA", str(tmp_path))
    for argv, says in ((["--only", "vad"], "run `make real-data`"), (["--only", "vad,lips"], "unknown section(s) lips")):
        with pytest.raises(SystemExit) as exit_info:
            bench.main(argv)
        assert exit_info.value.code == 2
        err = capsys.readouterr().err.strip()
        assert says in err and "\n" not in err
    grids = tmp_path / "mfa" / "tests" / "data" / "textgrid"
    grids.mkdir(parents=True)
    (grids / "michaelandsickmichael.TextGrid").write_text("not a grid")
    wavs = tmp_path / "mfa" / "tests" / "data" / "wav"
    wavs.mkdir(parents=True)
    import soundfile as sf

    sf.write(wavs / "michaelandsickmichael.wav", np.zeros((1600, 2), np.float32), 16000)
    with pytest.raises(SystemExit):
        bench.main(["--only", "vad"])
    err = capsys.readouterr().err.strip()
    assert "michaelandsickmichael.TextGrid: not a Praat TextGrid" in err and "\n" not in err
