"""The built-in demo's settings and layout: budgets (``--budget quick|full``) and where each result goes.

The stages that run it (corpus → prep → head VAE → encode-head → text-to-tokens → AV-Flow with
participant guidance → synth → conversation) are ``avflow`` commands a user would type, so they
are orchestrated by the CLI layer, :mod:`avflow_cli.cli.demo`; this module imports nothing of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


STAGES_FILE = "demo-stages.json"  # finished stages and their arguments (skip/resume)


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

    def __post_init__(self) -> None:
        self.corpus = self.root / "corpus"
        self.prep = self.root / "prep"
        self.shards = self.prep / "shards"
        self.models = self.root / "models"
        self.synth = self.root / "synth" / "hello"
        self.dialogue = self.root / "dialogue"
        self.conversation = self.root / "conversation"
