"""`python -m avflow_cli.real_voice package` / `readme` on a small stand-in run: which vocoder ships,
what the README says of it, and the quality table with two recognisers."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from avflow_cli.real_voice import GTA_VOCODER, README, checksums, package, read_checksums, write_readme

IMPORTED = {
    "voice": "asterisk:en_US_f_Allison", "license": "CC-BY-SA-3.0", "attribution": "voice of Allison Smith, © Digium",
    "train": 2, "train_seconds": 3.0, "heldout": ["a"], "skipped": [], "source_rates": {"16000": 3},
    "mel_band": {"top_hz": 7000.0, "bins_above": 3},
}


def _run(root: Path, *, gta: bool) -> Path:
    """The parts of a finished real-voice run that `package` copies (tiny, not trained)."""
    from avflow_cli.models.avflow import AVFlow
    from avflow_cli.models.config import AVFlowConfig
    from avflow_cli.models.normalize import Normalizer, model_streams
    from avflow_cli.models.registry import save_model_dir
    from avflow_cli.weights import save_safetensors

    cfg = AVFlowConfig(face_dim=4, d_model=16, hidden_dim=16, heads=2, depth=1, steps=2, token_source="alignment (x)")
    dims = {"face": 4, "head": cfg.head_dim, "mel": cfg.mel_dim, "tokens": cfg.token_dim}
    norm = Normalizer.identity({k: dims[k] for k in model_streams(cfg)})
    save_model_dir(root / "models/avflow", "avflow", cfg, AVFlow(cfg).state_dict(), norm.to_json(), preset="tiny")
    vocoders = ["vocoder/student"] + ([GTA_VOCODER] if gta else [])
    for i, part in enumerate(["models/t2t", "models/headvae", *vocoders]):
        (root / part).mkdir(parents=True)
        (root / part / "config.json").write_text(json.dumps({"part": part}))
        save_safetensors(root / part / "model.safetensors", {"w": torch.full((2, 2), float(i))})
    (root / "models/t2t/text_ids.json").write_text("{}")
    (root / "voice").mkdir()
    (root / "voice/import.json").write_text(json.dumps({**IMPORTED, "source": "/this/machine"}))
    (root / "cpu_time.tsv").write_text("t2t steps 0-10\t5 s wall\t9 s CPU\n")
    return root


def test_package_ships_the_gta_vocoder_when_the_run_made_one(tmp_path: Path) -> None:
    run = _run(tmp_path / "run", gta=True)
    (run / "models" / "avflow" / "token_gain.json").write_text('{"token_gain": 1.0, "scores": []}')  # what chose the gain
    dest = package(run, tmp_path / "pkg", recipe="GTA_STEPS=5 pipelines/real_voice.sh OUT")
    assert (dest / "avflow" / "token_gain.json").read_text() == '{"token_gain": 1.0, "scores": []}'
    assert (dest / "vocoder/model.safetensors").read_bytes() == (run / GTA_VOCODER / "model.safetensors").read_bytes()
    readme = (dest / README).read_text()
    assert "--gta-tokens" in readme and "GTA_STEPS=5" in readme
    assert read_checksums(dest) == checksums(dest)  # vocoder/source.txt is listed too
    assert json.loads((dest / "import.json").read_text())["source"] == "$AVFLOW_REAL_DATA/asterisk"

    plain = package(_run(tmp_path / "run2", gta=False), tmp_path / "pkg2")
    assert not (plain / "avflow" / "token_gain.json").exists()  # optional: a run without the stage packages too
    assert (plain / "vocoder/model.safetensors").read_bytes() == (tmp_path / "run2/vocoder/student/model.safetensors").read_bytes()
    assert "--gta-tokens" not in (plain / README).read_text()


def test_readme_reports_every_recogniser(tmp_path: Path) -> None:
    dest = package(_run(tmp_path / "run", gta=False), tmp_path / "pkg")
    both = {"pocketsphinx": 0.3, "whisper:tiny.en": 0.07}
    quality = {
        "asr": "pocketsphinx (pause-segmented, as avflow eval)", "asr_all": list(both),
        "table": [
            {"path": "recordings → mel → vocoder (ceiling)", "heldout_wer": 0.3, "heldout_mcd": 1.5, "new_wer": None,
             "heldout_wer_by_asr": both, "new_wer_by_asr": None},
            {"path": "text → t2t → AV-Flow → vocoder", "heldout_wer": 0.62, "heldout_mcd": 3.3, "new_wer": 0.6,
             "heldout_wer_by_asr": {"pocketsphinx": 0.62, "whisper:tiny.en": 0.51},
             "new_wer_by_asr": {"pocketsphinx": 0.6, "whisper:tiny.en": 0.5}},
        ],
    }
    (dest / "quality.json").write_text(json.dumps(quality))
    write_readme(dest)
    readme = (dest / README).read_text()
    assert "held-out WER (pocketsphinx / whisper:tiny.en)" in readme
    assert "| text → t2t → AV-Flow → vocoder | 0.62 / 0.51 | 3.30 | 0.60 / 0.50 |" in readme
    assert "| recordings → mel → vocoder (ceiling) | 0.30 / 0.07 | 1.50 | – |" in readme
    assert "second: whisper:tiny.en" in readme
    assert ("pocketsphinx: held-out **not met** (0.62 > 0.40), new sentences **not met** (0.60 > 0.30); "
            "whisper:tiny.en: held-out **not met** (0.51 > 0.17)") in readme
    assert "What was tried" in readme and "held-out rows score" not in readme and "calibrate-t2t" not in readme

    # one recogniser meets a goal; a later import's held-out folder; a calibrated text-to-tokens
    quality["table"][1]["heldout_wer_by_asr"] = {"pocketsphinx": 0.39, "whisper:tiny.en": 0.1}
    quality["heldout_prompts"] = 3
    (dest / "quality.json").write_text(json.dumps(quality))
    (dest / "t2t/config.json").write_text(json.dumps({"model": {"duration_scale": 1.14}}))
    write_readme(dest)
    readme = (dest / README).read_text()
    assert "pocketsphinx: held-out **met** (0.39 ≤ 0.40)" in readme and "held-out **met** (0.10 ≤ 0.17)" in readme
    assert "The held-out rows score 3 prompts" in readme and "than the 1 of this model's import" in readme
    assert "`model.duration_scale` = 1.14" in readme
    assert read_checksums(dest) == checksums(dest)
    assert "token gain" not in readme  # a model read as trained says nothing of it

    # a close call shows the digit that decides it; a token gain with what chose it
    quality["table"][1]["heldout_wer_by_asr"] = {"pocketsphinx": 0.39, "whisper:tiny.en": 0.1666}
    (dest / "quality.json").write_text(json.dumps(quality))
    config = json.loads((dest / "avflow" / "config.json").read_text())
    config["model"]["token_gain"] = 2.0
    (dest / "avflow" / "config.json").write_text(json.dumps(config))
    (dest / "avflow" / "token_gain.json").write_text(json.dumps({
        "token_gain": 2.0, "sentences": "dev", "samples": 3, "vocoder": "student",
        "scores": [{"gain": 1.0, "mean_wer": 0.44}, {"gain": 2.0, "mean_wer": 0.26}]}))
    write_readme(dest)
    readme = (dest / README).read_text()
    assert "held-out **met** (0.167 ≤ 0.170)" in readme
    assert "token gain 2 (`model.token_gain`" in readme and "1 → 0.440, 2 → 0.260" in readme
    assert read_checksums(dest) == checksums(dest)


def test_evaluate_refuses_an_unknown_recogniser_before_any_work(tmp_path: Path) -> None:
    import subprocess
    import sys

    res = subprocess.run([sys.executable, "-m", "avflow_cli.real_voice", "evaluate", str(tmp_path / "model"),
                          str(tmp_path / "heldout"), "--asr", "pocketsphinx", "--asr", "sphinx4"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode != 0 and "unknown ASR backend 'sphinx4'" in res.stderr
    assert "Traceback" not in res.stderr


def test_package_refuses_to_replace_a_folder_that_is_not_a_package(tmp_path: Path) -> None:
    import subprocess
    import sys

    run = _run(tmp_path / "run", gta=False)
    mine = tmp_path / "my_folder"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    res = subprocess.run([sys.executable, "-m", "avflow_cli.real_voice", "package", str(run), str(mine)],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode != 0 and "is not a real-voice model folder" in res.stderr and "Traceback" not in res.stderr
    assert (mine / "notes.txt").read_text() == "keep me"
    package(run, tmp_path / "pkg")
    package(run, tmp_path / "pkg")  # an earlier package is replaced
    assert (tmp_path / "pkg" / README).is_file()


def test_package_says_where_avflow_training_started(tmp_path: Path) -> None:
    from avflow_cli.shipped import shipped_model_dir

    run = _run(tmp_path / "run", gta=False)
    assert "random weights" in (package(run, tmp_path / "pkg") / README).read_text()
    config_path = run / "models/avflow/config.json"
    config = json.loads(config_path.read_text())
    config["train"] = {"steps": 10, "init": str(shipped_model_dir("pretrained"))}  # as `--init pretrained` records it
    config_path.write_text(json.dumps(config))
    dest = package(run, tmp_path / "pkg")
    assert (dest / "avflow" / "init.txt").read_text().strip() == "pretrained"
    assert "fine-tuned from the shipped demo model (`--init pretrained`" in (dest / README).read_text()
    assert "train" not in json.loads((dest / "avflow" / "config.json").read_text())  # this machine's paths stay behind
    assert read_checksums(dest) == checksums(dest)


def _heldout_folder(root: Path) -> Path:
    """Two flite prompts in the import's held-out layout (metadata.csv, wavs/ at the model rate, alignments/)."""
    from avflow_cli.audio.flite import TRACK_RATE, Flite
    from avflow_cli.audio.io import resample, write_audio
    from avflow_cli.constants import SAMPLE_RATE

    texts = {"one": "Press one to enter a number.", "two": "The leader has left the conference."}
    (root / "wavs").mkdir(parents=True)
    (root / "alignments").mkdir()
    flite = Flite()
    try:
        for item_id, text in texts.items():
            said = flite.synth(text, "slt")
            write_audio(root / "wavs" / f"{item_id}.wav", resample(said.audio, TRACK_RATE, SAMPLE_RATE).numpy(), SAMPLE_RATE)
            (root / "alignments" / f"{item_id}.json").write_text(json.dumps({"text": text, "phones": said.phones}))
    finally:
        flite.close()
    (root / "metadata.csv").write_text("".join(f"{i}|{t}|{t}\n" for i, t in texts.items()))
    return root


@pytest.mark.skipif(shutil.which("flite") is None, reason="flite (Debian package) not installed: `make install`")
def test_evaluate_pools_several_samples_of_every_text(tiny_avatar_model: Path, tmp_path: Path) -> None:
    from avflow_cli.errors import AvflowError
    from avflow_cli.real_voice import SAMPLE_SEED_STRIDE, evaluate

    model = tiny_avatar_model.parent  # avflow/ + t2t/ with random weights, as a package lays them out
    heldout = _heldout_folder(tmp_path / "heldout")
    new = ["Turn left at the corner."]
    result = evaluate(model, heldout, new_sentences=new, asr=("pocketsphinx",), samples=2)
    assert result["samples"] == 2 and result["heldout_prompts"] == 2
    by_path = {r["path"]: r for r in result["heldout"]}
    assert len(by_path["recordings"]["sentences"]) == 2  # what does not depend on a seed is scored once
    text = by_path["text → t2t → AV-Flow → vocoder"]["sentences"]
    assert [r["seed"] for r in text] == [0, 1, SAMPLE_SEED_STRIDE, SAMPLE_SEED_STRIDE + 1]
    assert [r["text"] for r in text] == [r["text"] for r in by_path["recordings"]["sentences"]] * 2
    assert all(r["mcd"] > 0 for r in text)  # every sample against its own prompt's recording
    assert [r["seed"] for r in result["new"]["sentences"]] == [0, SAMPLE_SEED_STRIDE]
    # the recordings themselves: flite's clean speech is heard almost word for word
    assert by_path["recordings"]["wer"] <= 0.25, by_path["recordings"]["sentences"]
    with pytest.raises(AvflowError, match="--samples must be at least 1"):
        evaluate(model, heldout, new_sentences=new, asr=("pocketsphinx",), samples=0)
