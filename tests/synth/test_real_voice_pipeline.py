"""pipelines/real_voice.sh with a stand-in `avflow`: the token gain is measured after the vocoder's
fine-tuning, through the vocoder the package will carry, once; again only when what it was measured
on changes; and AV-Flow's last training stage resets the gain to 1 so GTA pairs come from the model
as trained."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "pipelines" / "real_voice.sh"


def _finished_run(out: Path, *, gta: bool) -> None:
    """Every marker of a finished run up to the vocoders, so only the last stages have work."""
    for folder in ("voice", "corpus", "prep/shards", "models/headvae", "models/t2t", "models/avflow", "vocoder/student"):
        (out / folder).mkdir(parents=True, exist_ok=True)
    for name in ("voice/import.json", "corpus/corpus.json", "prep/shards/index.json", "models/headvae/model.safetensors"):
        (out / name).touch()
    for name, text in (("models/t2t/steps.done", "6000"), ("models/avflow/phase1.done", "4000"),
                       ("models/avflow/phase2.done", "9000"), ("vocoder/steps.done", "500")):
        (out / name).write_text(text + "\n")
    if gta:
        (out / "vocoder_gta" / "student").mkdir(parents=True)
        (out / "vocoder_gta" / "student" / "model.safetensors").touch()
        (out / "vocoder_gta.from").write_text("avflow steps 9000\n")
        (out / "vocoder_gta.done").write_text("2000\n")


def _run(tmp: Path, **env: str) -> list[str]:
    """Run the pipeline with `avflow` and `python` replaced by a logger; the calls it made."""
    log = tmp / "calls.log"
    log.unlink(missing_ok=True)
    stub = tmp / "stub"
    stub.write_text(f'#!/bin/sh\necho "$*" >> {log}\n')
    stub.chmod(0o755)
    res = subprocess.run(["bash", str(SCRIPT), "out"], cwd=tmp, capture_output=True, text=True,
                         env={**os.environ, "AVFLOW": str(stub), "PYTHON": str(stub), "ASR": "pocketsphinx whisper",
                              **env})
    assert res.returncode == 0, res.stdout + res.stderr
    return log.read_text().splitlines()


def test_token_gain_is_measured_once_through_the_packaged_vocoder(tmp_path: Path) -> None:
    _finished_run(tmp_path / "out", gta=True)
    calls = _run(tmp_path)
    gain = [c for c in calls if c.startswith("train token-gain")]
    assert gain == ["train token-gain out/models/avflow --gains 1,1.5,2,2.5 --samples 3 --vocoder student "
                    "--vocoder-checkpoint out/vocoder_gta/student --asr pocketsphinx --asr whisper"]
    order = [c.split()[0] if not c.startswith("-m") else c.split()[2] for c in calls]
    assert order.index("train") < order.index("package") < order.index("evaluate")  # measured, then packaged
    assert "TOKEN_GAINS=1,1.5,2,2.5" in next(c for c in calls if " package " in c)  # the recipe says so

    again = _run(tmp_path)
    assert not [c for c in again if c.startswith("train token-gain")]  # nothing it depends on changed
    changed = _run(tmp_path, TOKEN_GAINS="1,2")
    assert [c.split()[4] for c in changed if c.startswith("train token-gain")] == ["1,2"]


def test_without_gta_the_gain_is_measured_through_the_fine_tuned_vocoder(tmp_path: Path) -> None:
    _finished_run(tmp_path / "out", gta=False)
    calls = _run(tmp_path, GTA_STEPS="0")
    gain = [c for c in calls if c.startswith("train token-gain")]
    assert len(gain) == 1 and "--vocoder-checkpoint out/vocoder/student" in gain[0]


def test_further_training_resets_the_gain_before_gta_pairs_are_made(tmp_path: Path) -> None:
    _finished_run(tmp_path / "out", gta=True)
    _run(tmp_path)
    calls = _run(tmp_path, AV_STEPS="9500")  # AV-Flow trains further: GTA and the gain are made again
    cosine = next(c for c in calls if c.startswith("train avflow"))
    assert "--steps 9500" in cosine and "--set model.token_gain=1" in cosine
    kinds = [c.split()[1] if c.startswith("train") else "" for c in calls]
    assert kinds.index("avflow") < kinds.index("vocoder") < kinds.index("token-gain")
