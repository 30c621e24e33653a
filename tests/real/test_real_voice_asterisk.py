"""A few real Asterisk prompts through `avflow prep import asterisk`: G.722 decoding, forced alignment
of a real voice, descriptions skipped, and the lips following the real phone timing."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.real_data


@pytest.fixture(scope="module")
def asterisk_root() -> Path:
    """``$AVFLOW_REAL_DATA/asterisk`` (default real_data/ at the repository root); skipped when absent."""
    base = os.environ.get("AVFLOW_REAL_DATA") or str(Path(__file__).resolve().parents[2] / "real_data")
    root = Path(base) / "asterisk"
    if not root.is_dir():
        pytest.skip(f"real recordings not found in {base} (asterisk missing): run `make real-data`")
    return root


@pytest.fixture(scope="module")
def voice(asterisk_root: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    from avflow_cli.data.importers.asterisk import import_asterisk

    out = tmp_path_factory.mktemp("real_voice") / "voice"
    return out, import_asterisk(asterisk_root, out, limit=6, min_seconds=3.0)  # activated … agent-loggedoff


def test_real_prompts_are_imported_at_the_model_rate(voice: tuple[Path, object]) -> None:
    from avflow_cli.constants import SAMPLE_RATE

    out, report = voice
    assert report.rates == {16000: len(report.written)} and len(report.written) >= 4  # G.722, wideband
    for uid in ("activated", "added", "agent-alreadyon"):
        ali = json.loads((out / "alignments" / f"{uid}.json").read_text())
        assert ali["sample_rate"] == SAMPLE_RATE and ali["source"].endswith(".g722") and ali["band_hz"] == [50.0, 7000.0]
        assert ali["score_ratio"] >= 0.93 and len(ali["phones"]) >= 5
    words = [w for w, _, _ in json.loads((out / "alignments" / "agent-alreadyon.json").read_text())["aligned_words"]]
    assert words[:6] == ["THAT", "AGENT", "IS", "ALREADY", "LOGGED", "ON"]


def test_real_prompt_lips_close_on_its_bilabials(voice: tuple[Path, object]) -> None:
    from avflow_cli.constants import FACE_RATE
    from avflow_cli.data.demo_face import articulation
    from avflow_cli.data.real_speech import load_real_utterances

    out, _ = voice
    utt = next(u for u in load_real_utterances(out) if u.text.startswith("That agent"))
    n = int(np.ceil(utt.duration * FACE_RATE))
    closure = articulation(utt.phones, n)[:, 1]
    t = np.arange(n) / FACE_RATE
    bilabials = [(s, e) for p, s, e in utt.phones if p in ("p", "b", "m")]  # please, number, by, pound
    assert len(bilabials) >= 4
    for s, e in bilabials:
        assert closure[(t >= s - 0.5 / FACE_RATE) & (t <= e + 0.5 / FACE_RATE)].max() > 0.99


@pytest.mark.parametrize("prompt, first, last", [("digits/mon-3", "APRIL", "APRIL"),
                                                 ("confbridge-leave-out", "TO", "CONFERENCE")])
def test_tightly_cut_prompts_align_with_edge_silence(asterisk_root: Path, prompt: str, first: str, last: str) -> None:
    """Speech from the first sample to the last stopped pocketsphinx's phone pass ("Failed to stop
    utterance processing"); the aligner retries with edge silence, on the recording's own clock."""
    from avflow_cli.audio.forced_alignment import check_transcript
    from avflow_cli.audio.io import resample
    from avflow_cli.data.importers.asterisk import decode, find_layout, read_texts, source_file

    sounds, texts = find_layout(asterisk_root)
    text = next(p for p in read_texts(texts) if p.name == prompt)
    audio, rate = decode(source_file(sounds, text))
    wav16 = resample(torch.from_numpy(audio), rate, 16000).numpy()
    ali = check_transcript(wav16, text.text)
    duration = len(wav16) / 16000
    assert ali.score_ratio >= 0.93  # the text is what she says
    assert ali.words[0][0] == first and ali.words[-1][0] == last
    assert all(0.0 <= s < e <= duration + 1e-6 for _, s, e in ali.phones)  # no time inside the padding
    assert ali.phones[-1][2] >= duration - 0.02  # the phones reach the end of the recording
