"""The built-in demo's settings and layout: budgets (``--budget quick|full``) and where each result goes.

The stages that run it (corpus → prep → head VAE → encode-head → text-to-tokens → AV-Flow with
participant guidance → synth → conversation → comparison with the shipped model) are ``avflow``
commands a user would type, so they are orchestrated by the CLI layer, :mod:`avflow_cli.cli.demo`;
this module imports nothing of it. The last stage, :func:`compare_with_shipped`, is here: the
demo's own model and the shipped default speak the same sentences, so the user hears (and the
table shows) what training time makes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


STAGES_FILE = "demo-stages.json"  # finished stages and their arguments (skip/resume)
COMPARE_FILE = "compare.json"  # the comparison's numbers, read again by the final table
DEMO_LABEL = "demo"  # the comparison's name for the model `make demo` trained


@dataclass(frozen=True)
class DemoSettings:
    """Budget of the demo: the defaults (``quick``) take about ten minutes on 2 CPU cores."""

    minutes: float = 12.0
    seed: int = 0
    headvae_steps: int = 300
    t2t_steps: int = 800
    avflow_steps: int = 1500
    avflow_preset: str = "tiny"
    # packaged config (avflow_cli/configs): participant guidance, so the demo avatar listens
    avflow_config: str = "dyadic"
    # sampling temperature recorded in the model's config.json: the shipped demo model's, which
    # lowered its WER at every vocoder (docs/quality.md)
    avflow_temperature: float = 0.4
    # one token source for AV-Flow's shards and text-to-tokens' sentences (synth refuses a mixed
    # pair); alignment needs no Wav2Vec2 weights, so the demo is the same on every machine
    token_source: str = "alignment"
    text: str = "Hello! This is the avflow demo avatar, speaking and moving from text alone."
    device: str = "cpu"
    # sentences of the frozen test set (resources/test_sentences.txt) both models speak at the end
    # (0: no comparison); five keep the stage near a minute of CPU
    compare_sentences: int = 5


# Named budgets (`avflow demo --budget NAME`). `quick` shows the whole lifecycle in minutes;
# `full` is the recipe of the demo model measured in docs/quality.md (CPU hours; meant for a GPU).
BUDGETS: dict[str, DemoSettings] = {
    "quick": DemoSettings(),
    "full": DemoSettings(minutes=30.0, headvae_steps=600, t2t_steps=3000, avflow_steps=8000, avflow_preset="small"),
}


@dataclass
class DemoPaths:
    root: Path
    corpus: Path = field(init=False)
    prep: Path = field(init=False)
    shards: Path = field(init=False)
    models: Path = field(init=False)
    synth: Path = field(init=False)
    dialogue: Path = field(init=False)  # a test-split session turned into a dialogue file
    conversation: Path = field(init=False)
    compare: Path = field(init=False)  # NN/{demo,pretrained,flite}.wav side by side + compare.json

    def __post_init__(self) -> None:
        self.corpus = self.root / "corpus"
        self.prep = self.root / "prep"
        self.shards = self.prep / "shards"
        self.models = self.root / "models"
        self.synth = self.root / "synth" / "hello"
        self.dialogue = self.root / "dialogue"
        self.conversation = self.root / "conversation"
        self.compare = self.root / "compare"


def compare_with_shipped(model_dir: Path, out: Path, *, sentences: int, device: str = "cpu", seed: int = 0) -> dict[str, Any]:
    """The demo's model and the shipped default on the first ``sentences`` of the frozen test set.

    Scored as the probe scores (metrics/probe.py): WER of the text path (what ``avflow synth``
    does) and lip-closure F1 within speech from the true tokens; flite's own audio is the ceiling.
    Writes ``out/NN/{demo,pretrained,flite}.wav`` (one folder per sentence, its text in
    ``text.txt``) and ``out/compare.json``; returns what the JSON holds.
    """
    import torch

    from avflow_cli import constants as K
    from avflow_cli.audio.io import write_audio
    from avflow_cli.fsutil import atomic_dir
    from avflow_cli.metrics.face_decoder import find_mouth_decoder, load_mouth_decoder
    from avflow_cli.metrics.probe import corpus_wer, make_probe_items, probe_sentences, score_tokens_path
    from avflow_cli.shipped import DEFAULT_MODEL
    from avflow_cli.synth import Synthesizer

    items = make_probe_items(probe_sentences("test")[:sentences])
    texts = [item.text for item in items]
    rows: list[dict[str, Any]] = []
    with atomic_dir(out, kind="demo-compare") as tmp, torch.inference_mode():
        for i, text in enumerate(texts, start=1):
            (tmp / f"{i:02d}").mkdir()
            (tmp / f"{i:02d}" / "text.txt").write_text(text + "\n", encoding="utf-8")
            write_audio(tmp / f"{i:02d}" / "flite.wav", items[i - 1].audio, K.SAMPLE_RATE)
        for label, model in ((DEMO_LABEL, model_dir), (DEFAULT_MODEL, DEFAULT_MODEL)):
            synth = Synthesizer(model, device=device)
            wavs = [synth.synthesize(text, seed=seed + i).wav for i, text in enumerate(texts)]
            for i, wav in enumerate(wavs, start=1):
                write_audio(tmp / f"{i:02d}" / f"{label}.wav", wav, synth.vocoder.sample_rate)
            decoder = find_mouth_decoder(synth.model_dir)  # the lips' truth needs the demo avatar's decoder
            mouth = load_mouth_decoder(decoder) if decoder is not None else None
            lips = score_tokens_path(synth, items, mouth, seed=seed).lip_f1_speech
            rows.append({"model": label, "wav": f"{label}.wav", "path": str(synth.model_dir),
                         "vocoder": synth.components["vocoder"], "lip_f1_speech": lips,
                         "text_wer": corpus_wer(texts, wavs, synth.vocoder.sample_rate)})
        rows.append({"model": "flite (its teacher's voice)", "wav": "flite.wav", "path": "", "vocoder": "",
                     "text_wer": corpus_wer(texts, [item.audio for item in items], K.SAMPLE_RATE), "lip_f1_speech": None})
        result = {"sentences": texts, "set": "test", "seed": seed, "rows": rows}
        (tmp / COMPARE_FILE).write_text(json.dumps(result, indent=1))
    return result
