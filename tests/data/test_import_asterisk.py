"""`avflow prep import asterisk`: a tiny Asterisk-like folder made here (flite speech, G.722 and
8 kHz wav made with ffmpeg), real alignment, skip-with-reason, rates, held-out prompts, refusals."""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from avflow_cli.constants import SAMPLE_RATE
from avflow_cli.errors import AvflowError

pytestmark = pytest.mark.skipif(not (shutil.which("flite") and shutil.which("ffmpeg")), reason="needs flite and ffmpeg")

SPOKEN = {  # name → what flite says (the audio)
    "remember": "Please remember the number.",
    "digits/7": "seven",
    "mismatch": "Your call cannot be completed as dialed.",
    "narrow": "Goodbye, and thank you for calling.",
}
RATIO = 0.85  # 8 kHz flite speech scores ~0.93, a wrong text far below (forced_alignment.py)
TEXTS = {  # name → the text file's text
    "remember": "Please remember the number.",
    "digits/7": "seven",
    "mismatch": "Thank you.",  # not what the audio says
    "narrow": "Goodbye, and thank you for calling.",
    "beep": "[this is a simple beep tone]",
    "silent": "",
}


def _speak(text: str, dst: Path, rate: int, codec: str) -> None:
    wav = dst.with_suffix(".flite.wav")
    subprocess.run(["flite", "-voice", "slt", "-t", text, "-o", str(wav)], check=True, capture_output=True)
    fmt = ["-c:a", "g722", "-f", "g722"] if codec == "g722" else ["-c:a", "pcm_s16le"]
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(wav), "-ar", str(rate), "-ac", "1", *fmt, str(dst)], check=True)
    wav.unlink()


@pytest.fixture(scope="module")
def asterisk_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder in the published layout: usr/share/asterisk/sounds/en_US_f_Allison + the texts (.gz)."""
    root = tmp_path_factory.mktemp("asterisk")
    sounds = root / "usr/share/asterisk/sounds/en_US_f_Allison"
    docs = root / "usr/share/doc/asterisk-core-sounds-en"
    (sounds / "digits").mkdir(parents=True)
    docs.mkdir(parents=True)
    for name, text in SPOKEN.items():
        if name == "narrow":  # only the 8 kHz wav exists: mixed rates
            _speak(text, sounds / f"{name}.wav", 8000, "wav")
        else:
            _speak(text, sounds / f"{name}.g722", 16000, "g722")
    _speak("beep", sounds / "beep.g722", 16000, "g722")
    _speak("silence", sounds / "silent.g722", 16000, "g722")
    lines = ["; Core Asterisk Sounds in English", ""] + [f"{n}: {t}" for n, t in TEXTS.items()]
    with gzip.open(docs / "core-sounds-en.txt.gz", "wt", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return root


@pytest.fixture(scope="module")
def imported(asterisk_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    from avflow_cli.data.importers.asterisk import import_asterisk

    out = tmp_path_factory.mktemp("voice") / "voice"
    report = import_asterisk(asterisk_dir, out, hold_out=["remember"], min_seconds=1.0, min_score_ratio=RATIO)
    return out, report


def test_layout_rates_and_alignments(imported: tuple[Path, object]) -> None:
    out, report = imported
    rows = [line.split("|") for line in (out / "metadata.csv").read_text().splitlines()]
    assert [r[0] for r in rows] == ["digits__7", "narrow"]  # "digits/7" → a plain file name
    assert rows[1][1:] == ["Goodbye, and thank you for calling."] * 2
    for uid, _, spoken in rows:
        info = sf.info(str(out / "wavs" / f"{uid}.wav"))
        assert (info.samplerate, info.channels) == (SAMPLE_RATE, 1)
        ali = json.loads((out / "alignments" / f"{uid}.json").read_text())
        assert ali["text"] == spoken and ali["duration"] == pytest.approx(info.duration, abs=1e-3)
        phones = ali["phones"]
        assert phones and all(s < e for _, s, e in phones) and phones[-1][2] <= info.duration + 0.02
        assert all(p == p.lower() for p, _, _ in phones)  # flite naming
    narrow = json.loads((out / "alignments" / "narrow.json").read_text())
    assert narrow["source_rate"] == 8000 and narrow["band_hz"] == [0.0, 4000.0]
    assert report.rates == {16000: 2, 8000: 1}  # mixed rates: each resampled, reported
    meta = json.loads((out / "import.json").read_text())
    assert meta["source_rates"] == {"8000": 1, "16000": 2}
    assert meta["mel_band"]["top_hz"] == 4000.0 and meta["mel_band"]["bins_above"] > 10  # the narrowest band
    assert meta["license"] == "CC-BY-SA-3.0" and "Allison" in meta["attribution"]


def test_doubtful_prompts_are_listed_with_a_reason_never_written(imported: tuple[Path, object]) -> None:
    out, report = imported
    reasons = dict(report.skipped)
    assert set(reasons) == {"mismatch", "beep", "silent"}
    assert reasons["mismatch"].startswith("text does not match the audio")
    assert "no spoken words" in reasons["beep"] and "no spoken words" in reasons["silent"]
    written = {p.stem for p in (out / "wavs").glob("*.wav")} | {p.stem for p in (out / "heldout" / "wavs").glob("*.wav")}
    assert written == {"digits__7", "narrow", "remember"}
    meta = json.loads((out / "import.json").read_text())
    assert {s["prompt"] for s in meta["skipped"]} == set(reasons)


def test_held_out_prompts_stay_out_of_training(imported: tuple[Path, object]) -> None:
    out, report = imported
    assert report.heldout == ["remember"]
    assert "remember" not in (out / "metadata.csv").read_text()
    held = (out / "heldout" / "metadata.csv").read_text().splitlines()
    assert held == ["remember|Please remember the number.|Please remember the number."]
    assert (out / "heldout" / "alignments" / "remember.json").is_file()


def test_rerun_keeps_finished_prompts(asterisk_dir: Path, imported: tuple[Path, object]) -> None:
    from avflow_cli.data.importers.asterisk import import_asterisk

    out, _ = imported
    before = (out / "wavs" / "narrow.wav").stat().st_mtime_ns
    again = import_asterisk(asterisk_dir, out, hold_out=["remember"], min_seconds=1.0, min_score_ratio=RATIO)
    assert sorted(again.existing) == ["digits/7", "narrow", "remember"] and again.written == []
    assert (out / "wavs" / "narrow.wav").stat().st_mtime_ns == before


def test_too_little_speech_is_a_clear_error(asterisk_dir: Path, tmp_path: Path) -> None:
    from avflow_cli.data.importers.asterisk import import_asterisk

    with pytest.raises(AvflowError, match=r"only \d+\.\d s of usable training speech \(at least 600 s needed\)"):
        import_asterisk(asterisk_dir, tmp_path / "v", min_seconds=600.0)
    assert not (tmp_path / "v" / "metadata.csv").exists()  # not a usable folder


def test_spoken_text_and_alignment_words() -> None:
    from avflow_cli.audio.forced_alignment import alignment_words, spoken_text

    assert spoken_text("Press 1 [beep], or Call-Forward.") == "Press one, or Call Forward."
    assert alignment_words("at [@]") == ["at"]
    assert alignment_words("(3 seconds of silence)") == []


def test_cli_one_line_errors(tmp_path: Path) -> None:
    from avflow_cli.cli.main import app

    runner = CliRunner()
    missing = runner.invoke(app, ["prep", "import", "asterisk", str(tmp_path / "nope"), str(tmp_path / "out")])
    assert missing.exit_code == 2 and "not an Asterisk sounds folder" in missing.output
    assert "Traceback" not in missing.output


def test_cli_refuses_unknown_held_out_names(asterisk_dir: Path, tmp_path: Path) -> None:
    from avflow_cli.cli.main import app

    (tmp_path / "held.txt").write_text("# held out\nno-such-prompt\n")
    result = CliRunner().invoke(app, ["prep", "import", "asterisk", str(asterisk_dir), str(tmp_path / "out"),
                                      "--hold-out", str(tmp_path / "held.txt")])
    assert result.exit_code == 2 and "no-such-prompt" in result.output
    assert not (tmp_path / "out").exists()


def test_mel_band_of_g722() -> None:
    from avflow_cli.data.importers.asterisk import mel_band

    band = mel_band(7000.0)
    assert band["bins_above"] == 80 - band["first_bin_above"] and 0 < band["bins_above"] < 10
    assert np.isclose(band["mel_fmax"], 8000.0)


# --- the face follows the real voice: phones from the forced alignment drive the lips ------------------
BILABIAL = ("p", "b", "m")


def test_real_utterances_keep_the_aligned_phones(imported: tuple[Path, object]) -> None:
    from avflow_cli.audio.flite import TRACK_RATE
    from avflow_cli.data.real_speech import TRIM_MARGIN_S, load_real_utterances

    out, _ = imported
    held = load_real_utterances(out / "heldout")
    assert [u.text for u in held] == ["Please remember the number."]
    utt = held[0]
    ali = json.loads((out / "heldout" / "alignments" / "remember.json").read_text())
    speech = [p for p in ali["phones"] if p[0] != "pau"]
    # trimmed to the speech with a margin (nothing to trim when the speech starts inside it), phones moved with it
    shift = max(0.0, speech[0][1] - TRIM_MARGIN_S)
    assert [p for p, _, _ in utt.phones] == [p for p, _, _ in speech]
    assert np.allclose([s for _, s, _ in utt.phones], [s - shift for _, s, _ in speech], atol=1e-3)
    assert utt.duration == pytest.approx(speech[-1][2] - shift + TRIM_MARGIN_S, abs=2 / TRACK_RATE)
    assert utt.voice == "asterisk:en_US_f_Allison"


def test_lips_close_on_the_real_bilabials(imported: tuple[Path, object]) -> None:
    from avflow_cli.constants import FACE_RATE
    from avflow_cli.data.demo_face import articulation
    from avflow_cli.data.real_speech import load_real_utterances

    out, _ = imported
    utt = load_real_utterances(out / "heldout")[0]  # "Please remember the number.": p, m m b, m b
    n = int(np.ceil(utt.duration * FACE_RATE))
    closure = articulation(utt.phones, n)[:, 1]  # (N,)
    t = np.arange(n) / FACE_RATE
    bilabials = [(s, e) for p, s, e in utt.phones if p in BILABIAL]
    assert len(bilabials) == 6
    for s, e in bilabials:  # shut on at least one frame of each, at the aligned time
        assert closure[(t >= s - 0.5 / FACE_RATE) & (t <= e + 0.5 / FACE_RATE)].max() > 0.99
    far = np.ones(n, bool)
    for p, s, e in utt.phones:
        if p in BILABIAL or p in ("f", "v"):
            far &= (t < s - 0.1) | (t > e + 0.1)
    assert far.any() and closure[far].max() < 0.5  # open elsewhere


def test_corpus_with_real_actor_speech(imported: tuple[Path, object], tmp_path: Path) -> None:
    from avflow_cli.constants import FACE_RATE
    from avflow_cli.data.demo_corpus import generate_corpus
    from avflow_cli.render.demo_avatar import PARAM_INDEX

    out, _ = imported
    corpus = generate_corpus(tmp_path / "c", minutes=0.2, seed=1, size=32, show_progress=False,
                             actor_speech=out / "heldout")
    assert corpus["speakers"]["actor"] == "asterisk:en_US_f_Allison"
    assert corpus["request"]["actor_speech"].startswith("heldout@")
    session = tmp_path / "c" / corpus["sessions"][0]
    turns = json.loads((session / "transcript.json").read_text())["turns"]
    actor = [t for t in turns if t["speaker"] == "actor"]
    assert actor and {t["text"] for t in actor} == {"Please remember the number."}
    lips = np.load(session / "face_params.npy")[:, PARAM_INDEX["lip_closure"]]  # (N,) at FACE_RATE
    t = np.arange(len(lips)) / FACE_RATE
    for turn in actor:
        for p, s, e in turn["phones"]:
            if p in BILABIAL:
                assert lips[(t >= s - 0.5 / FACE_RATE) & (t <= e + 0.5 / FACE_RATE)].max() > 0.99
    again = generate_corpus(tmp_path / "c", minutes=0.2, seed=1, size=32, show_progress=False,
                            actor_speech=out / "heldout")
    assert again["skipped"]  # same recordings, same request: nothing to do


def test_actor_speech_without_phone_timing_is_refused(imported: tuple[Path, object], tmp_path: Path) -> None:
    from avflow_cli.cli.main import app

    bare = tmp_path / "bare"
    shutil.copytree(imported[0] / "heldout", bare)
    shutil.rmtree(bare / "alignments")
    result = CliRunner().invoke(app, ["demo", "corpus", "--out", str(tmp_path / "c"), "--minutes", "0.2",
                                      "--actor-speech", str(bare)])
    assert result.exit_code == 2 and "phone timing" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "c").exists()
