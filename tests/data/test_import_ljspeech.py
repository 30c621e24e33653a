"""LJSpeech import: metadata parsing, 22 050 Hz mono output, errors, re-runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from avflow_cli.data.importers import ljspeech as L
from avflow_cli.errors import InputFileError


@pytest.fixture()
def corpus(tmp_path: Path) -> Path:
    """LJSpeech-1.1 in miniature: one ready wav, one 44.1 kHz stereo, one float wav."""
    root = tmp_path / "LJSpeech-1.1"
    (root / "wavs").mkdir(parents=True)
    t = np.arange(22050) / 22050
    sf.write(root / "wavs" / "LJ001-0001.wav", 0.3 * np.sin(2 * np.pi * 220 * t), 22050, subtype="PCM_16")
    t2 = np.arange(44100) / 44100
    stereo = np.stack([0.3 * np.sin(2 * np.pi * 300 * t2), 0.1 * np.sin(2 * np.pi * 300 * t2)], 1)
    sf.write(root / "wavs" / "LJ001-0002.wav", stereo, 44100, subtype="PCM_16")
    sf.write(root / "wavs" / "LJ001-0003.wav", 0.2 * np.sin(2 * np.pi * 180 * t), 22050, subtype="FLOAT")
    (root / "metadata.csv").write_text(
        "LJ001-0001|Printing, in the only sense|Printing, in the only sense\n"
        'LJ001-0002|in 1476 "quotes" stay|in fourteen seventy-six "quotes" stay\n'
        "LJ001-0003|no normalised column\n",
        encoding="utf-8",
    )
    return tmp_path


def test_import_layout_and_resampling(corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "lj"
    report = L.import_ljspeech(corpus, out)  # finds LJSpeech-1.1/ below the given folder
    assert len(report.written) == 3
    lines = (out / "metadata.csv").read_text(encoding="utf-8").splitlines()
    assert lines[1] == 'LJ001-0002|in 1476 "quotes" stay|in fourteen seventy-six "quotes" stay'
    assert lines[2] == "LJ001-0003|no normalised column|no normalised column"
    src = corpus / "LJSpeech-1.1" / "wavs"
    assert (out / "wavs" / "LJ001-0001.wav").read_bytes() == (src / "LJ001-0001.wav").read_bytes()
    for uid in ("LJ001-0002", "LJ001-0003"):
        info = sf.info(str(out / "wavs" / f"{uid}.wav"))
        assert (info.samplerate, info.channels, info.subtype) == (22050, 1, "PCM_16")
        assert abs(info.frames - 22050) <= 1
    mixed, _ = sf.read(out / "wavs" / "LJ001-0002.wav")
    assert abs(np.abs(mixed[1000:-1000]).max() - 0.2) < 0.01  # mean of 0.3 and 0.1 amplitude
    again = L.import_ljspeech(corpus / "LJSpeech-1.1", out)
    assert again.written == [] and len(again.existing) == 3
    assert abs(L.total_seconds(out) - 3.0) < 0.01


def test_metadata_errors(corpus: Path, tmp_path: Path) -> None:
    meta = corpus / "LJSpeech-1.1" / "metadata.csv"
    text = meta.read_text()
    meta.write_text(text + "LJ001-0001|again|again\n")
    with pytest.raises(InputFileError, match="line 4: duplicate id 'LJ001-0001'"):
        L.import_ljspeech(corpus, tmp_path / "x")
    meta.write_text(text + "just one field\n")
    with pytest.raises(InputFileError, match="line 4: expected 'id|text|normalized text'"):
        L.import_ljspeech(corpus, tmp_path / "x")
    meta.write_text(text + "LJ009-0009|missing wav|missing wav\n")
    with pytest.raises(InputFileError, match=r"LJ009-0009\.wav: file not found \(1 of 4"):
        L.import_ljspeech(corpus, tmp_path / "x")
    assert not (tmp_path / "x").exists()
    report = L.import_ljspeech(corpus, tmp_path / "y", limit=2)
    assert len(report.written) == 2
    with pytest.raises(InputFileError, match="metadata.csv: file not found"):
        L.import_ljspeech(tmp_path / "y" / "wavs", tmp_path / "z")


def test_training_data_reads_metadata_with_the_importers_parser(tmp_path: Path) -> None:
    """One parser of metadata.csv: text-to-tokens training gets the importer's checks too."""
    from avflow_cli.data.t2t_dataset import read_metadata

    (tmp_path / "metadata.csv").write_text("a1|Dr. Smith|Doctor Smith\na2|plain text\n", encoding="utf-8")
    assert read_metadata(tmp_path) == [("a1", "Doctor Smith"), ("a2", "plain text")]  # normalised column preferred
    for bad, problem in [("../x|escapes the folder\n", "not a plain file name"), ("a|one\na|two\n", "duplicate id"),
                         ("a|b|c|d\n", "line 1")]:
        (tmp_path / "metadata.csv").write_text(bad, encoding="utf-8")
        with pytest.raises(InputFileError, match=problem):
            read_metadata(tmp_path)
