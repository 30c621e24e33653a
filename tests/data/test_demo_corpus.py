"""The built-in demo corpus: layout, rates, exact viseme timing, determinism, LJSpeech export, CLI."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from avflow_cli.constants import CAPTURE_SAMPLE_RATE, FACE_RATE, SAMPLE_RATE, SMIRK_DIM
from avflow_cli.data import demo_corpus as dc
from avflow_cli.errors import AvflowError
from avflow_cli.render import demo_avatar as da

pytestmark = pytest.mark.skipif(
    shutil.which("flite") is None or shutil.which("ffmpeg") is None, reason="flite and ffmpeg are needed"
)
MINUTES = 0.3
SESSION_FILES = (
    "session.json", "audio.wav", "face_codes.npy", "head_rot.npy", "head_trans.npy", "participant_smirk.npy",
    "participant.mp4", "transcript.json", "face_params.npy",
)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """A 0.3-minute corpus (one 18 s session), generated once for the module."""
    out = tmp_path_factory.mktemp("demo") / "corpus"
    summary = dc.generate_corpus(out, minutes=MINUTES, seed=0, show_progress=False)
    return out, summary


@pytest.fixture(scope="module")
def session(corpus: tuple[Path, dict]) -> Path:
    return corpus[0] / corpus[1]["sessions"][0]


def _actor_phones(session: Path) -> list[tuple[str, float, float]]:
    turns = json.loads((session / "transcript.json").read_text())["turns"]
    return [(p, s, e) for t in turns if t["speaker"] == "actor" for p, s, e in t["phones"]]


# --- layout and shapes ----------------------------------------------------------------------------
def test_layout_matches_the_session_contract(corpus: tuple[Path, dict], session: Path) -> None:
    out, summary = corpus
    assert not summary["skipped"] and summary["total_seconds"] == pytest.approx(18.0)
    meta = json.loads((out / "corpus.json").read_text())
    assert meta["sessions"] == ["session_000"] and meta["seed"] == 0
    assert meta["speakers"]["actor"] == "flite:slt"
    assert set(meta["speakers"]["participant"]) <= {"flite:rms", "flite:awb"}
    da.FaceDecoder.load(out / meta["face_decoder"])
    for name in SESSION_FILES:
        assert (session / name).is_file(), name
    info = json.loads((session / "session.json").read_text())
    assert info["sample_rate"] == 48000 and info["channels"] == {"actor": 0, "participant": 1}
    assert info["face_fps"] == 30.0 and info["face_dim"] == da.NUM_PARAMS and info["source"] == "demo"
    assert info["translation_units"] == "mm" and info["face_param_names"] == list(da.FACE_PARAM_NAMES)
    assert sorted(p.name for p in out.parent.iterdir()) == ["corpus"]  # no temporary folders left


def test_streams_have_the_documented_shapes_and_rates(session: Path) -> None:
    n = int(round(18.0 * FACE_RATE))
    codes = np.load(session / "face_codes.npy")
    assert codes.shape == (n, da.NUM_PARAMS) and codes.dtype == np.float32
    assert np.load(session / "face_params.npy").shape == (n, da.NUM_PARAMS)
    rot = np.load(session / "head_rot.npy")
    assert rot.shape == (n, 3, 3)
    np.testing.assert_allclose(rot @ np.swapaxes(rot, 1, 2), np.broadcast_to(np.eye(3), rot.shape), atol=1e-5)
    np.testing.assert_allclose(np.linalg.det(rot), 1.0, atol=1e-5)
    trans = np.load(session / "head_trans.npy")
    assert trans.shape == (n, 3) and 900 < trans[:, 2].mean() < 1100 and trans.std(axis=0).min() > 1.0
    smirk = np.load(session / "participant_smirk.npy")
    assert smirk.shape == (n, SMIRK_DIM) and np.isfinite(smirk).all()
    p_params = np.load(session / "participant_params.npy")
    jaw = p_params[:, da.PARAM_INDEX["jaw_open"]]
    np.testing.assert_allclose(smirk[:, 50], dc.JAW_MAX_RAD * jaw, atol=1e-6)
    assert np.abs(smirk[:, 53:]).max() < 0.6 and smirk[:, 53:].std() > 1e-3  # head rotation, axis-angle
    for arr in (codes, rot, trans, smirk):
        assert np.isfinite(arr).all()


def test_audio_is_stereo_48k_with_bleed_and_noise(session: Path) -> None:
    audio, sr = sf.read(session / "audio.wav", always_2d=True)  # (S, 2)
    assert sr == CAPTURE_SAMPLE_RATE and audio.shape == (int(round(18.0 * FACE_RATE)) * 1600, 2)
    turns = json.loads((session / "transcript.json").read_text())["turns"]

    def rms(channel: int, speaker: str) -> float:
        spans = [(t["start"], t["end"]) for t in turns if t["speaker"] == speaker and not t["backchannel"]]
        others = [(t["start"], t["end"]) for t in turns if t["speaker"] != speaker]
        mask = np.zeros(len(audio), dtype=bool)
        for s, e in spans:
            mask[int(s * sr) : int(e * sr)] = True
        for s, e in others:  # only where the other speaker is silent
            mask[int(s * sr) : int(e * sr)] = False
        return float(np.sqrt((audio[mask, channel] ** 2).mean()))

    # Each channel carries its own speaker loudly and the other one 16-22 dB down (bleed).
    for own, other, speaker in ((0, 1, "actor"), (1, 0, "participant")):
        ratio_db = 20 * np.log10(rms(own, speaker) / rms(other, speaker))
        assert 12.0 < ratio_db < 26.0, (speaker, ratio_db)
    silence = audio[: int(0.2 * sr)]  # before the first turn: background noise only
    assert 1e-4 < np.abs(silence).max() < 0.05


def test_transcript_phones_are_ordered_inside_turns(session: Path) -> None:
    turns = json.loads((session / "transcript.json").read_text())["turns"]
    speakers = {t["speaker"] for t in turns}
    assert speakers == {"actor", "participant"}
    for t in turns:
        assert 0.0 <= t["start"] < t["end"] <= 18.0 and t["text"]
        times = np.array([[s, e] for _, s, e in t["phones"]])
        assert (times[:, 0] < times[:, 1]).all() and (np.diff(times[:, 0]) >= 0).all()
        assert times.min() >= t["start"] - 1e-3 and times.max() <= t["end"] + 1e-3
        assert all(p != "pau" for p, _, _ in t["phones"])
    assert [t["start"] for t in turns] == sorted(t["start"] for t in turns)


# --- exact visemes --------------------------------------------------------------------------------
def test_lips_close_on_every_bilabial_and_open_on_vowels(corpus: tuple[Path, dict], session: Path) -> None:
    decoder = da.FaceDecoder.load(corpus[0] / "face_decoder.npz")
    lip = decoder.lip_distance(np.load(session / "face_codes.npy"))  # (N,) mm
    phones = _actor_phones(session)
    frame_t = np.arange(len(lip)) / FACE_RATE
    bilabials = [(s, e) for p, s, e in phones if p in dc.BILABIALS]
    assert len(bilabials) >= 3
    for s, e in bilabials:  # every p/b/m shuts the lips on the frames inside it (and at least one frame)
        window = (frame_t >= s - 0.5 / FACE_RATE) & (frame_t <= e + 0.5 / FACE_RATE)
        assert window.any() and (lip[window] < da.LIP_CLOSED_THRESHOLD).all(), (s, e, lip[window])
    near_bilabial = np.zeros(len(lip), dtype=bool)
    for s, e in bilabials:
        near_bilabial |= (frame_t > s - 1.0 / FACE_RATE) & (frame_t < e + 1.0 / FACE_RATE)
    open_vowels = [(s, e) for p, s, e in phones if dc.VOWEL_JAW.get(p, 0.0) >= 0.5 and e - s >= 0.08]
    checked = 0
    for s, e in open_vowels:
        inside = (frame_t >= s) & (frame_t < e) & ~near_bilabial
        assert (lip[inside] > da.LIP_CLOSED_THRESHOLD).all(), (s, e, lip[inside])
        checked += int(inside.sum())
    assert checked >= 10
    speech = np.zeros(len(lip), dtype=bool)
    for _, s, e in phones:
        speech |= (frame_t >= s - 0.2) & (frame_t <= e + 0.2)
    assert (lip[~speech] < da.LIP_CLOSED_THRESHOLD).all()  # mouth at rest while silent


def test_face_codes_decode_to_the_saved_parameters(corpus: tuple[Path, dict], session: Path) -> None:
    decoder = da.FaceDecoder.load(corpus[0] / "face_decoder.npz")
    params = np.load(session / "face_params.npy")
    np.testing.assert_allclose(decoder.params(np.load(session / "face_codes.npy")), params, atol=5 * da.CODE_NOISE_STD)  # ≤ 5 σ of code noise per parameter
    blinks = params[:, da.PARAM_INDEX["blink_l"]]
    assert blinks.max() > 0.9 and (blinks > 0.5).mean() < 0.2  # some blinks, eyes mostly open


def test_articulation_on_known_timing() -> None:
    phones = [("m", 0.10, 0.16), ("aa", 0.16, 0.40), ("uw", 0.50, 0.70), ("b", 0.70, 0.72)]
    art = dc.articulation(phones, n_frames=30)  # (N, 3) jaw, closure, round
    assert art.shape == (30, 3)
    frames = lambda s, e: slice(int(np.ceil(s * 30)), int(np.ceil(e * 30)))  # noqa: E731
    assert (art[frames(0.10, 0.16), 1] == 1.0).all()
    assert art[frames(0.25, 0.35), 0].min() > 0.6 and art[frames(0.25, 0.35), 1].max() < 0.05
    assert art[frames(0.55, 0.65), 2].min() > 0.5  # rounded uw
    assert art[21, 1] == 1.0  # a 20 ms /b/ between frames still closes the lips on the nearest frame
    assert art[0, 0] < 0.1 and art[-1, 1] < 0.05  # at rest outside speech


def test_parse_psdur_and_stress() -> None:
    spans = dc.parse_psdur("pau:0.184 dh:0.228 ax:0.258 b:0.339 er:0.454 ch:0.563 pau:0.7 \n")
    assert spans[0] == ("pau", 0.0, 0.184) and spans[2] == ("ax", 0.228, 0.258) and len(spans) == 7
    phones = [("ax", 0.0, 0.2), ("ih", 0.2, 0.25), ("aa", 0.3, 0.45), ("eh", 0.5, 0.56)]
    assert dc.stressed_vowels(phones) == [(0.3, 0.45)]  # long full vowel; reduced ax never stressed


def test_actor_returns_participant_smiles_half_to_one_second_later() -> None:
    rng = np.random.default_rng(0)
    p_events = [(float(s), 2.0, 0.8) for s in range(5, 300, 10)]
    a_events = dc.returned_smiles(rng, p_events, duration=400.0)
    delays = []
    for s, _, _ in p_events:
        later = [a for a, _, _ in a_events if 0.0 <= a - s <= 1.0]
        if later:
            delays.append(later[0] - s)
    assert len(delays) >= 0.7 * len(p_events)
    assert min(delays) >= 0.5 and max(delays) <= 1.0


def test_head_nods_while_listening() -> None:
    n = int(60 * FACE_RATE)
    silent = np.zeros(n)
    calm, _, _ = dc.head_motion(np.random.default_rng(0), silent, np.zeros(n, dtype=bool), np.array([]))
    nodding, _, _ = dc.head_motion(np.random.default_rng(0), silent, np.ones(n, dtype=bool), np.array([]))
    pitch_speed = lambda e: np.abs(np.diff(e[:, 0])).mean()  # noqa: E731
    assert pitch_speed(nodding) > 2 * pitch_speed(calm)
    np.testing.assert_allclose(nodding[:, 1:], calm[:, 1:])  # nods are pitch only


def test_session_durations() -> None:
    assert dc.session_durations(18.0, 60.0) == [18.0]
    assert dc.session_durations(150.0, 60.0) == [60.0, 60.0, 30.0]
    assert dc.session_durations(125.0, 60.0) == [60.0, 65.0]  # a 5 s tail joins the last session


# --- LJSpeech export, video -----------------------------------------------------------------------
def test_ljspeech_export(corpus: tuple[Path, dict]) -> None:
    lj = corpus[0] / "ljspeech"
    rows = [line.split("|") for line in (lj / "metadata.csv").read_text().splitlines()]
    assert rows and all(len(r) == 3 and r[1] == r[2] and r[1] for r in rows)
    assert len(rows) == corpus[1]["ljspeech_items"] == len(list((lj / "wavs").glob("*.wav")))
    item, text, _ = rows[0]
    wav, sr = sf.read(lj / "wavs" / f"{item}.wav")
    assert sr == SAMPLE_RATE and wav.ndim == 1 and np.abs(wav).max() > 0.1
    align = json.loads((lj / "alignments" / f"{item}.json").read_text())
    assert align["text"] == text and align["phones"][-1][2] <= len(wav) / sr + 1e-3
    turns = json.loads((corpus[0] / "session_000" / "transcript.json").read_text())["turns"]
    assert text == next(t["text"] for t in turns if t["speaker"] == "actor")


def test_participant_video_is_30_fps(session: Path) -> None:
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
         "stream=r_frame_rate,nb_frames,width", "-of", "json", str(session / "participant.mp4")],
        capture_output=True, text=True, check=True,
    )
    stream = json.loads(probe.stdout)["streams"][0]
    assert stream["r_frame_rate"] == "30/1" and int(stream["nb_frames"]) == 540 and stream["width"] == 192


# --- determinism, re-runs, errors -----------------------------------------------------------------
def test_same_seed_same_corpus_other_seed_differs(corpus: tuple[Path, dict], tmp_path: Path) -> None:
    again = dc.generate_corpus(tmp_path / "again", minutes=MINUTES, seed=0, show_progress=False)
    first = corpus[0] / "session_000"
    second = Path(again["out_dir"]) / "session_000"
    for name in ("face_codes.npy", "head_rot.npy", "head_trans.npy", "participant_smirk.npy"):
        np.testing.assert_array_equal(np.load(first / name), np.load(second / name))
    for name in ("audio.wav", "transcript.json", "session.json"):
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    metadata = "ljspeech/metadata.csv"
    assert (corpus[0] / metadata).read_text() == (tmp_path / "again" / metadata).read_text()
    other = dc.generate_corpus(tmp_path / "other", minutes=0.15, seed=1, show_progress=False)
    def texts(root: str | Path) -> list[str]:
        turns = json.loads((Path(root) / "session_000/transcript.json").read_text())["turns"]
        return [t["text"] for t in turns]

    assert texts(other["out_dir"])[:3] != texts(first.parent)[:3]


def test_rerun_skips_and_other_content_is_refused(corpus: tuple[Path, dict], tmp_path: Path) -> None:
    out, _ = corpus
    stamp = (out / "corpus.json").stat().st_mtime_ns
    again = dc.generate_corpus(out, minutes=MINUTES, seed=0, show_progress=False)
    assert again["skipped"] and (out / "corpus.json").stat().st_mtime_ns == stamp
    with pytest.raises(AvflowError, match="--force"):
        dc.generate_corpus(out, minutes=MINUTES, seed=5, show_progress=False)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(AvflowError, match="holds something else"):
        dc.generate_corpus(tmp_path / "busy", minutes=MINUTES, show_progress=False)


def test_failure_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_args: object, **_kw: object) -> None:
        raise AvflowError("renderer exploded")

    monkeypatch.setattr(da, "render_video", broken)
    with pytest.raises(AvflowError, match="exploded"):
        dc.generate_corpus(tmp_path / "c", minutes=0.15, show_progress=False)
    assert list(tmp_path.iterdir()) == []


runner = CliRunner()


def _cli(*args: str):
    from avflow_cli.cli.main import app

    return runner.invoke(app, ["demo", "corpus", *args])


def test_cli_reruns_quietly(corpus: tuple[Path, dict]) -> None:
    result = _cli("--out", str(corpus[0]), "--minutes", str(MINUTES), "--seed", "0")
    assert result.exit_code == 0 and "nothing to do" in result.output


def test_cli_one_line_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bad = _cli("--out", str(tmp_path / "c"), "--minutes", "0")
    assert bad.exit_code == 2 and "--minutes must be between" in bad.output
    (tmp_path / "file").write_text("x")
    blocked = _cli("--out", str(tmp_path / "file" / "c"), "--minutes", "0.2")
    assert blocked.exit_code == 2 and "cannot create output directory" in blocked.output
    monkeypatch.setenv("PATH", str(tmp_path))  # no flite on PATH
    missing = _cli("--out", str(tmp_path / "c"), "--minutes", "0.2")
    assert missing.exit_code == 2 and "flite" in missing.output and "make install" in missing.output
    assert "Traceback" not in missing.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_cli_force_replaces_another_corpus_and_overwrite_is_its_old_name(corpus: tuple[Path, dict], tmp_path: Path) -> None:
    out = tmp_path / "c"
    shutil.copytree(corpus[0], out)
    args = ("--out", str(out), "--minutes", "0.15", "--seed", "1", "--size", "32")
    refused = _cli(*args)
    assert refused.exit_code == 2 and "pass --force" in refused.output
    replaced = _cli(*args, "--overwrite")
    assert replaced.exit_code == 0 and "--overwrite is deprecated; use --force" in replaced.output
    assert json.loads((out / "corpus.json").read_text())["request"]["seed"] == 1
    assert "--overwrite" not in _cli("--help").output and "--force" in _cli("--help").output
