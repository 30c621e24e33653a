"""The built-in demo: corpus → prep → head VAE → encode-head → text-to-tokens → AV-Flow → synth.

Each stage runs the same ``avflow`` command a user would type (one source of option handling),
in this process. Finished stages are recorded in ``OUT/demo-stages.json`` together with their
arguments, so a re-run skips them, and a stage whose arguments changed runs again.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import typer

from avflow_cli.console import console
from avflow_cli.errors import AvflowError
from avflow_cli.fsutil import atomic_path, ensure_writable_dir

STAGES_FILE = "demo-stages.json"


@dataclass(frozen=True)
class DemoSettings:
    """Budget of the demo: the defaults (``quick``) take about ten minutes on 2 CPU cores."""

    minutes: float = 12.0
    seed: int = 0
    headvae_steps: int = 300
    t2t_steps: int = 800
    avflow_steps: int = 1500
    avflow_preset: str = "tiny"
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

    def __post_init__(self) -> None:
        self.corpus = self.root / "corpus"
        self.prep = self.root / "prep"
        self.shards = self.prep / "shards"
        self.models = self.root / "models"
        self.synth = self.root / "synth" / "hello"


@dataclass(frozen=True)
class Stage:
    name: str
    title: str
    args: list[str]
    output: Path  # must exist for the stage to count as done
    clean: Path | None = None  # stale results removed before the stage re-runs with other settings


def demo_stages(paths: DemoPaths, s: DemoSettings) -> list[Stage]:
    """The demo's stages in order, each an ``avflow`` command line."""
    m = paths.models
    return [
        Stage("corpus", "generate the demo corpus (flite speech, demo avatar)",
              ["demo", "corpus", "--out", str(paths.corpus), "--minutes", str(s.minutes), "--seed", str(s.seed)],
              paths.corpus / "corpus.json", paths.corpus),
        Stage("prep", "prepare shards (VAD, mel, tokens, head pose → 86.13 fps HDF5)",
              ["prep", "all", str(paths.corpus), str(paths.prep), "--tokens-source", s.token_source],
              paths.shards / "index.json", paths.prep),
        Stage("headvae", "train the head-pose VAE (tiny)",
              ["train", "headvae", "--data", str(paths.shards), "--out", str(m / "headvae"), "--preset", "tiny",
               "--steps", str(s.headvae_steps), "--device", s.device], m / "headvae" / "model.safetensors", m / "headvae"),
        Stage("encode-head", "write head-pose latents into the shards",
              ["prep", "encode-head", str(paths.shards), "--head-vae", str(m / "headvae")], paths.shards / "index.json"),
        Stage("t2t-tokens", "tokens for the actor's sentences (text-to-tokens data)",
              ["prep", "tokens", str(paths.corpus / "ljspeech"), "--source", s.token_source],
              paths.corpus / "ljspeech" / "tokens", paths.corpus / "ljspeech" / "tokens"),
        Stage("t2t", "train text-to-tokens (tiny)",
              ["train", "t2t", "--data", str(paths.corpus / "ljspeech"), "--out", str(m / "t2t"), "--preset", "tiny",
               "--steps", str(s.t2t_steps), "--device", s.device], m / "t2t" / "model.safetensors", m / "t2t"),
        Stage("avflow", f"train AV-Flow ({s.avflow_preset})",
              ["train", "avflow", "--data", str(paths.shards), "--out", str(m / "avflow"), "--preset", s.avflow_preset,
               "--steps", str(s.avflow_steps), "--device", s.device, "--head-vae", str(m / "headvae")],
              m / "avflow" / "model.safetensors", m / "avflow"),
        Stage("synth", f"synthesize {s.text!r}",
              ["synth", s.text, "-o", str(paths.synth), "--model", str(m / "avflow"), "--device", s.device],
              paths.synth / "speech.wav", paths.synth),
    ]


def _load_done(path: Path) -> dict[str, list[str]]:
    try:
        return json.loads(path.read_text()) if path.is_file() else {}
    except json.JSONDecodeError:
        return {}


def run_cli(args: list[str]) -> None:
    """Run one ``avflow`` command line in this process; a failure becomes an AvflowError."""
    from avflow_cli.cli.main import app

    command = typer.main.get_command(app)
    try:
        code = command.main(args=args, prog_name="avflow", standalone_mode=False)
    except SystemExit as exc:  # typer.Exit inside commands
        code = exc.code
    if code not in (None, 0):
        raise AvflowError(f"demo stage failed: avflow {' '.join(args)} (exit {code})")


def run_demo(out: str | Path, settings: DemoSettings = DemoSettings(), *, runner: Callable[[list[str]], None] = run_cli) -> DemoPaths:
    """Run (or resume) the whole demo under ``out``; return where everything is."""
    paths = DemoPaths(Path(out))
    ensure_writable_dir(paths.root)
    done_file = paths.root / STAGES_FILE
    done = _load_done(done_file)
    stages = demo_stages(paths, settings)
    rerun_rest = False  # once a stage re-runs, everything after it is stale
    for i, stage in enumerate(stages, start=1):
        header = f"[{i}/{len(stages)}] {stage.title}"
        recorded = done.pop(stage.name, None)
        if not rerun_rest and recorded == stage.args and stage.output.exists():
            console.print(f"[dim]{header}: done, skipped[/]")
            done[stage.name] = recorded
            continue
        if (recorded is not None or rerun_rest) and stage.clean is not None and stage.clean.exists():
            shutil.rmtree(stage.clean)  # results of other settings: never mix them with new ones
        rerun_rest = True
        console.rule(header)
        start = time.perf_counter()
        # A training run killed half-way continues from its last checkpoint.
        resumable = stage.name in {"headvae", "t2t", "avflow"} and (stage.output.parent / "train_state.pt").exists()
        runner(stage.args + (["--resume"] if resumable else []))
        console.print(f"[green]{stage.name} finished in {time.perf_counter() - start:.0f} s[/]")
        done[stage.name] = stage.args
        with atomic_path(done_file) as tmp:
            tmp.write_text(json.dumps(done, indent=1))
    return paths
