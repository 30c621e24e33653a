"""``avflow demo``: the built-in demo. ``demo corpus`` generates data; ``demo`` alone runs everything.

Each stage runs the same ``avflow`` command a user would type (one source of option handling),
in this process; the last two are library calls: a conversation from a test dialogue of the corpus
(:func:`avflow_cli.converse.converse`), then the demo's model against the shipped one on the same
sentences of the frozen test set (:func:`avflow_cli.demo.compare_with_shipped`), whose table ends
the run. Finished stages are recorded in
``OUT/demo-stages.json`` together with their arguments, so a re-run skips them, and a stage
whose arguments changed runs again (with every stage after it). Settings and the output layout
live in :mod:`avflow_cli.demo`; the orchestration lives here, in the CLI layer that it drives.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import click
import typer
from rich.table import Table

from avflow_cli.cli import demo_corpus
from avflow_cli.console import console
from avflow_cli.demo import COMPARE_FILE, STAGES_FILE, DemoPaths, DemoSettings, compare_with_shipped
from avflow_cli.errors import AvflowError
from avflow_cli.fsutil import atomic_path, ensure_writable_dir
from avflow_cli.shipped import DEFAULT_MODEL, MODEL_ENV

_DEFAULTS = DemoSettings()


@dataclass(frozen=True)
class Stage:
    name: str
    title: str
    args: list[str]  # the avflow command line (or, with ``call``, the settings it is recorded by)
    output: Path  # must exist for the stage to count as done
    clean: Path | None = None  # stale results removed before the stage re-runs with other settings
    call: Callable[[], None] | None = None  # a library call instead of an avflow command line


def render_conversation(paths: DemoPaths, s: DemoSettings) -> None:
    """A test-split session of the demo corpus → ``dialogue.toml`` → the conversation, listened and spoken."""
    from avflow_cli.converse import converse
    from avflow_cli.data.schema import ShardIndex
    from avflow_cli.synth import Synthesizer

    test = ShardIndex.load(paths.shards).split("test")
    if not test:
        raise AvflowError(f"{paths.shards}: no test clip, so no test dialogue to render")
    if paths.dialogue.exists():
        shutil.rmtree(paths.dialogue)
    dialogue = _first_dialogue(sorted({rec.source for rec in test}), paths.dialogue)
    synth = Synthesizer(paths.models / "avflow", device=s.device)
    converse(synth, dialogue, paths.conversation)


def _first_dialogue(sessions: list[str], out_dir: Path) -> Path:
    """The dialogue of the first test session whose opening has a participant turn (a session can
    open with a long actor monologue)."""
    from avflow_cli.converse import dialogue_from_session
    from avflow_cli.errors import InputFileError

    reasons = []
    for session in sessions:
        try:
            return dialogue_from_session(Path(session), out_dir)
        except InputFileError as err:
            reasons.append(str(err))
    raise AvflowError("no test session can be rendered as a dialogue: " + "; ".join(reasons))


def comparison_table(paths: DemoPaths) -> Table | None:
    """The final table: WER and lip F1 of the demo's model against the shipped one (None before the stage ran)."""
    try:
        result = json.loads((paths.compare / COMPARE_FILE).read_text())
    except (OSError, json.JSONDecodeError):
        return None
    n = len(result["sentences"])
    table = Table(title=f"what training time makes: the same {n} sentences of the frozen test set",
                  caption=f"WER: pocketsphinx on `avflow synth`'s speech; lip F1: lip closures within speech. "
                  f"Listen side by side: {paths.compare}/01 … {n:02d}/ (text.txt says the sentence)")
    for column in ("model", "WER", "lip F1", "vocoder", "listen"):
        table.add_column(column)
    for row in result["rows"]:
        f1 = "–" if row["lip_f1_speech"] is None else f"{row['lip_f1_speech']:.2f}"
        table.add_row(row["model"], f"{row['text_wer']:.2f}", f1, row["vocoder"] or "–", f"NN/{row['wav']}")
    return table


def demo_stages(paths: DemoPaths, s: DemoSettings) -> list[Stage]:
    """The demo's stages in order, each an ``avflow`` command line (the last a library call)."""
    m = paths.models
    compare = [] if s.compare_sentences <= 0 else [
        Stage("compare", f"compare with the shipped model: the same {s.compare_sentences} sentences of the frozen test set",
              ["compare", str(m / "avflow"), "--sentences", str(s.compare_sentences), "--device", s.device],
              paths.compare / COMPARE_FILE, paths.compare,
              call=lambda: compare_with_shipped(m / "avflow", paths.compare, sentences=s.compare_sentences,
                                                device=s.device, seed=s.seed))]
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
              ["prep", "encode-head", "--data", str(paths.shards), "--head-vae", str(m / "headvae")], paths.shards / "index.json"),
        Stage("t2t-tokens", "tokens for the actor's sentences (text-to-tokens data)",
              ["prep", "tokens", str(paths.corpus / "ljspeech"), "--source", s.token_source],
              paths.corpus / "ljspeech" / "tokens", paths.corpus / "ljspeech" / "tokens"),
        Stage("t2t", "train text-to-tokens (tiny)",
              ["train", "t2t", "--data", str(paths.corpus / "ljspeech"), "--out", str(m / "t2t"), "--preset", "tiny",
               "--steps", str(s.t2t_steps), "--device", s.device], m / "t2t" / "model.safetensors", m / "t2t"),
        Stage("avflow", f"train AV-Flow ({s.avflow_preset}, --config {s.avflow_config}: listens to the participant)",
              ["train", "avflow", "--data", str(paths.shards), "--out", str(m / "avflow"), "--preset", s.avflow_preset,
               "--config", s.avflow_config, "--steps", str(s.avflow_steps), "--device", s.device,
               "--head-vae", str(m / "headvae"), "--set", f"model.temperature={s.avflow_temperature}"],
              m / "avflow" / "model.safetensors", m / "avflow"),
        Stage("synth", f"synthesize {s.text!r}",
              ["synth", s.text, "-o", str(paths.synth), "--model", str(m / "avflow"), "--device", s.device],
              paths.synth / "speech.wav", paths.synth),
        Stage("conversation", "render a conversation from a test dialogue of the corpus (speaking and listening)",
              ["converse", "test-dialogue", "-o", str(paths.conversation), "--model", str(m / "avflow"),
               "--device", s.device],
              paths.conversation / "speech.wav", paths.conversation, call=lambda: render_conversation(paths, s)),
        *compare,
    ]


def _load_done(path: Path) -> dict[str, list[str]]:
    try:
        return json.loads(path.read_text()) if path.is_file() else {}
    except json.JSONDecodeError:
        return {}


def cli_runner(root: click.Command) -> Callable[[list[str]], None]:
    """A stage runner: one ``avflow`` command line of ``root`` (the root command) in this process;
    a failure becomes an AvflowError. The root comes from the caller, so this module never imports
    the CLI's entry point (which imports it: no cycle)."""

    def run(args: list[str]) -> None:
        try:
            code = root.main(args=args, prog_name="avflow", standalone_mode=False)
        except SystemExit as exc:  # typer.Exit inside commands
            code = exc.code
        if code not in (None, 0):
            raise AvflowError(f"demo stage failed: avflow {' '.join(args)} (exit {code})")

    return run


def _check_demo_dir(paths: DemoPaths) -> None:
    """The demo cleans and rewrites its own sub-folders (dialogue/, stale stage results): it runs
    only in a new or empty folder, or in one an earlier demo made (its stage ledger is there;
    what other tools added beside, e.g. ablation/, is left alone), never in a user's folder."""
    root = paths.root
    if root.exists() and not root.is_dir():
        raise AvflowError(f"{root}: exists and is a file; --out names the demo's folder")
    if not root.is_dir() or (root / STAGES_FILE).is_file():
        return
    entries = sorted(p.name for p in root.iterdir() if not p.name.startswith("."))
    if entries:
        raise AvflowError(f"{root}: holds {', '.join(entries[:3])}{' …' if len(entries) > 3 else ''}, not an "
                          "avflow demo's; choose a new or empty --out")


def run_demo(out: str | Path, settings: DemoSettings = DemoSettings(), *,
             runner: Callable[[list[str]], None] | None = None) -> DemoPaths:
    """Run (or resume) the whole demo under ``out``; return where everything is.

    ``runner`` runs a stage's command line (tests pass a recorder); library stages are called.
    Inside ``avflow demo`` it defaults to the running root command; from Python pass
    ``cli_runner(typer.main.get_command(avflow_cli.cli.main.app))``.
    """
    if runner is None:
        ctx = click.get_current_context(silent=True)
        if ctx is None:
            raise AvflowError("run_demo outside the `avflow` command needs runner=cli_runner(<the avflow root command>)")
        runner = cli_runner(ctx.find_root().command)
    paths = DemoPaths(Path(out))
    _check_demo_dir(paths)
    ensure_writable_dir(paths.root)
    done_file = paths.root / STAGES_FILE
    done = _load_done(done_file)
    if not done_file.is_file():  # the ledger marks the folder as the demo's before any stage writes into it
        with atomic_path(done_file) as tmp:
            tmp.write_text(json.dumps(done, indent=1))
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
        if stage.call is not None:
            stage.call()
        else:
            # A training run killed half-way continues from its last checkpoint.
            resumable = stage.name in {"headvae", "t2t", "avflow"} and (stage.output.parent / "train_state.pt").exists()
            runner(stage.args + (["--resume"] if resumable else []))
        console.print(f"[green]{stage.name} finished in {time.perf_counter() - start:.0f} s[/]")
        done[stage.name] = stage.args
        with atomic_path(done_file) as tmp:
            tmp.write_text(json.dumps(done, indent=1))
    return paths

app = typer.Typer(invoke_without_command=True)
demo_corpus.register(app)  # `avflow demo corpus`


@app.callback()
def demo(
    ctx: typer.Context,
    out: Path = typer.Option(Path("demo_out"), "--out", "-o", help="Folder for the corpus, shards, models and synthesis."),
    budget: str = typer.Option("quick", "--budget", help="quick: the whole lifecycle in about ten CPU minutes "
                               "(a 12-minute corpus, tiny models; the speech is not yet intelligible). full: the "
                               "recipe of the demo model measured in docs/quality.md (30-minute corpus, small AV-Flow "
                               "for 8000 steps: CPU hours). Options below override single values."),
    minutes: Optional[float] = typer.Option(None, "--minutes", help="Minutes of demo dialogue to generate."),
    seed: int = typer.Option(_DEFAULTS.seed, "--seed", help="Seed of the corpus."),
    avflow_steps: Optional[int] = typer.Option(None, "--avflow-steps", min=1, help="AV-Flow training steps."),
    t2t_steps: Optional[int] = typer.Option(None, "--t2t-steps", min=1, help="Text-to-tokens training steps (tiny preset)."),
    headvae_steps: Optional[int] = typer.Option(None, "--headvae-steps", min=1, help="Head-pose VAE training steps (tiny preset)."),
    text: str = typer.Option(_DEFAULTS.text, "--text",
                             help="What the demo avatar says at the end."),
    compare: int = typer.Option(_DEFAULTS.compare_sentences, "--compare", min=0, help="Sentences of the frozen test "
                                "set that the demo's model and the shipped one both speak at the end, scored side by "
                                "side (0: skip the comparison)."),
    device: str = typer.Option(_DEFAULTS.device, "--device", help="cpu (default), cuda, cuda:N or auto: where the "
                               "models train and synthesize (--budget full is meant for a GPU; it has not been timed on one yet)."),
) -> None:
    """Run the whole lifecycle on built-in demo data (CPU): corpus → prep → train → synth → conversation.

    Re-running reuses finished stages. `avflow demo corpus` only generates the corpus.
    """
    if ctx.invoked_subcommand is not None:
        return
    from dataclasses import replace

    from avflow_cli.demo import BUDGETS

    if budget not in BUDGETS:
        raise AvflowError(f"--budget must be one of {', '.join(BUDGETS)}, got {budget!r}")
    chosen = {"minutes": minutes, "avflow_steps": avflow_steps, "t2t_steps": t2t_steps, "headvae_steps": headvae_steps}
    settings = replace(BUDGETS[budget], seed=seed, text=text, device=device, compare_sentences=compare, **{k: v for k, v in chosen.items() if v is not None})
    if settings.minutes <= 0:
        raise AvflowError(f"--minutes must be positive, got {settings.minutes}")
    paths = run_demo(out, settings, runner=cli_runner(ctx.find_root().command))  # stages run on this very command tree
    console.rule("demo finished")
    from avflow_cli.output import META_NAME, MOTION_NAME, PREVIEW_NAME, SPEECH_NAME

    for name in (SPEECH_NAME, MOTION_NAME, PREVIEW_NAME, META_NAME):
        path = paths.synth / name
        if path.exists():
            console.print(f"{name:12s} {path}", highlight=False)
    console.print(f"conversation {paths.conversation} (the avatar speaks and listens to a test dialogue)", highlight=False)
    console.print(f"models       {paths.models}\nshards       {paths.shards}", highlight=False)
    table = comparison_table(paths)
    if table is not None:
        console.print(table)
    console.print(f"A plain `avflow synth \"…\" -o out/` speaks with the shipped model ({DEFAULT_MODEL}); this demo's "
                  f"model only when named:\n  avflow synth \"Your own sentence.\" -o out/ --model {paths.models / 'avflow'}"
                  f"\n  (or export {MODEL_ENV}={paths.models / 'avflow'} to make it the default)", highlight=False,
                  soft_wrap=True)
