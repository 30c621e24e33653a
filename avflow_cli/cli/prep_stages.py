"""``avflow prep vad|mel|tokens|headpose|shards|index|all``: option parsing over avflow_cli.data.prep."""

from __future__ import annotations

from collections.abc import Callable
import inspect
from dataclasses import asdict
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from avflow_cli.audio.vad import VadConfig
from avflow_cli.cli.aliases import renamed
from avflow_cli.console import console, progress

VAD = VadConfig()  # the defaults shown in --help

SRC_HELP = "A session folder (holding session.json) or a tree of them."
OUT_HELP = "Prep work folder: per-session features go to OUT/sessions/NAME/, shards to OUT/shards/."
FORCE_HELP = "Recompute even where the output already exists (default: skip finished work)."


def _each_session(src: Path, out: Path, label: str, fn: Callable) -> list:
    """Run ``fn(session)`` over every session of ``src`` with a progress bar; return results."""
    from avflow_cli.data.prep import check_session, check_writable, find_sessions

    sessions = find_sessions(src)
    check_writable(out)
    for s in sessions:  # validate everything first, so bad input leaves no partial output
        check_session(s, out)
    results = []
    with progress() as bar:
        task = bar.add_task(label, total=len(sessions), status="")
        for s in sessions:
            bar.update(task, status=s.name)
            results.append((s, fn(s)))
            bar.advance(task)
    return results


def vad(
    src: Path = typer.Argument(..., help=SRC_HELP),
    out: Path = typer.Argument(..., help=OUT_HELP),
    aggressiveness: int = typer.Option(VAD.aggressiveness, help="webrtcvad aggressiveness 0 (keeps most) … 3 (strictest)."),
    frame_ms: int = typer.Option(VAD.frame_ms, help="VAD frame length in ms: 10, 20 or 30."),
    crosstalk_db: float = typer.Option(VAD.crosstalk_db, help="Where both channels detect speech, a channel this many dB quieter than the other is treated as bleed."),
    energy_gate_db: float = typer.Option(VAD.energy_gate_db, help="Speech must be this many dB above the channel's noise floor."),
    min_gap_ms: float = typer.Option(VAD.min_gap_ms, help="Fill silences shorter than this inside speech."),
    min_segment_ms: float = typer.Option(VAD.min_segment_ms, help="Drop speech segments shorter than this."),
    hangover_ms: float = typer.Option(VAD.hangover_ms, help="Extend every speech segment by this at its end."),
    preroll_ms: float = typer.Option(VAD.preroll_ms, help="Extend every speech segment by this at its start."),
    nonspeech: str = typer.Option(VAD.nonspeech, help="What happens to non-speech in actor.wav/participant.wav: attenuate, zero or keep."),
    attenuation_db: float = typer.Option(VAD.attenuation_db, help="Gain of non-speech with --nonspeech attenuate."),
    evaluate: bool = typer.Option(True, help="Score the segments against transcript.json turn times (frame precision/recall/F1): stored in vad.json and printed. --no-evaluate skips scoring."),
    force: bool = typer.Option(False, help=FORCE_HELP),
) -> None:
    """Separate actor and participant speech of 2-channel recordings: actor.wav, participant.wav, vad.json."""
    import json

    from avflow_cli.data.prep import stage_vad

    cfg = VadConfig(aggressiveness=aggressiveness, frame_ms=frame_ms, crosstalk_db=crosstalk_db,
                    energy_gate_db=energy_gate_db, min_gap_ms=min_gap_ms, min_segment_ms=min_segment_ms,
                    hangover_ms=hangover_ms, preroll_ms=preroll_ms, nonspeech=nonspeech, attenuation_db=attenuation_db)
    cfg.validate()
    results = _each_session(src, out, "vad", lambda s: stage_vad(s, out, cfg, evaluate=evaluate, force=force))
    table = Table("session", "speaker", "precision", "recall", "F1", title="VAD vs transcript turns (10 ms frames)")
    totals: dict[str, list] = {}
    for s, path in results:
        for spk, sc in json.loads(path.read_text()).get("scores", {}).items():
            table.add_row(s.name, spk, f"{sc['precision']:.3f}", f"{sc['recall']:.3f}", f"{sc['f1']:.3f}")
            totals.setdefault(spk, []).append(sc["f1"])
    if table.row_count and evaluate:
        for spk, f1s in totals.items():
            table.add_row("[bold]mean[/]", spk, "", "", f"{sum(f1s) / len(f1s):.3f}")
        console.print(table)
    console.print(f"VAD done for {len(results)} session(s) in {out}")


def mel(
    src: Path = typer.Argument(..., help=SRC_HELP),
    out: Path = typer.Argument(..., help=OUT_HELP),
    mel_from: str = typer.Option("vad", help="Actor audio to use: 'vad' (cleaned actor.wav, runs VAD if needed) or 'raw' (channel of audio.wav)."),
    force: bool = typer.Option(False, help=FORCE_HELP),
) -> None:
    """BigVGAN 22 kHz/80-band log-mel of the actor's audio (resampled to 22 050 Hz): mel.npy (T, 80)."""
    from avflow_cli.data.prep import MEL_SOURCES, stage_mel

    if mel_from not in MEL_SOURCES:
        raise typer.BadParameter("--mel-from must be vad or raw")
    results = _each_session(src, out, "mel", lambda s: stage_mel(s, out, mel_from=mel_from, force=force))
    console.print(f"mel done for {len(results)} session(s) in {out}")


def tokens(
    src: Path = typer.Argument(..., help=SRC_HELP + " Or an LJSpeech-layout folder (metadata.csv, wavs/, alignments/): writes tokens/ID.npy there."),
    out: Path = typer.Argument(None, help=OUT_HELP + " Not used for LJSpeech-layout folders."),
    source: str = typer.Option("auto", help="auto: precomputed tokens_actor.npy, else Wav2Vec2 if its checkpoint is found, else the transcript's phone timing. wav2vec2: ASR logits. alignment: CTC-shaped logits from known timing."),
    checkpoint: Path = typer.Option(None, help="Wav2Vec2 ASR base-960h weights file (default: the avflow checkpoint search path)."),
    device: str = typer.Option("cpu", help="Device for Wav2Vec2 (cpu, cuda, cuda:1, …)."),
    force: bool = typer.Option(False, help=FORCE_HELP),
) -> None:
    """50 Hz character logits (29) for actor and participant: tokens.npy, p_tokens.npy."""
    from avflow_cli.data.ljspeech_tokens import ljspeech_tokens
    from avflow_cli.data.prep import SESSION_FILE, stage_tokens
    from avflow_cli.data.t2t_dataset import read_metadata
    from avflow_cli.errors import AvflowError

    if (src / "metadata.csv").is_file() and not (src / SESSION_FILE).is_file():
        rows = read_metadata(src)
        with progress() as bar:
            task = bar.add_task("tokens", total=len(rows), status=str(src))
            written, used = ljspeech_tokens(src, source, checkpoint, device, lambda: bar.advance(task))
        console.print(f"tokens ({used}): wrote {written} of {len(rows)} files in {src / 'tokens'}")
        return
    if out is None:
        raise AvflowError(f"{src}: give an OUT folder for session tokens")
    def run(s):
        return stage_tokens(s, out, source=source, checkpoint=checkpoint, device=device, force=force)

    results = _each_session(src, out, "tokens", run)
    console.print(f"tokens done for {len(results)} session(s) in {out}")


def headpose(
    src: Path = typer.Argument(..., help=SRC_HELP),
    out: Path = typer.Argument(..., help=OUT_HELP),
    force: bool = typer.Option(False, help=FORCE_HELP),
) -> None:
    """Rotation matrices + translations → (N, 7) quaternion wxyz + translation: head_pose.npy."""
    from avflow_cli.data.prep import stage_headpose

    results = _each_session(src, out, "headpose", lambda s: stage_headpose(s, out, force=force))
    console.print(f"head pose done for {len(results)} session(s) in {out}")


def _tolerance(length_tolerance_s: float, deprecated: float | None) -> float:
    """--length-tolerance-s, or the value of its old name --length-tolerance (with a note)."""
    return renamed("--length-tolerance", deprecated, "--length-tolerance-s", length_tolerance_s)


def _run_shards(src: Path, out: Path, shared: dict, shard_index: int | None, title: str,
                vad_cfg: VadConfig | None = None) -> None:
    """Validate the shard options, build shards with one progress display and print the summary."""
    from avflow_cli.data.index import PartManifest
    from avflow_cli.data.prep import ShardOptions, build_shards, check_num_shards, find_sessions

    opts = ShardOptions(max_clip_seconds=shared["max_clip_seconds"], min_clip_seconds=shared["min_clip_seconds"],
                        val_fraction=shared["val_fraction"], test_fraction=shared["test_fraction"],
                        seed=shared["seed"], participant=shared["participant"],
                        length_tolerance_s=_tolerance(shared["length_tolerance_s"], shared["length_tolerance"]),
                        tokens_source=shared["tokens_source"], mel_from=shared["mel_from"],
                        vad=asdict(vad_cfg or VadConfig()))
    opts.validate()
    sessions = find_sessions(src)
    n = check_num_shards(shared["num_shards"], len(sessions))
    mine = len(sessions) if shard_index is None else len(range(shard_index, len(sessions), n))
    shard_dir = shared["shard_dir"]
    with progress() as bar:
        task = bar.add_task(title, total=mine * 5, status="")

        def step(desc: str) -> None:
            bar.update(task, status=desc)
            bar.advance(task)

        result = build_shards(src, out, opts, num_shards=n, shard_index=shard_index, shard_dir=shard_dir,
                              checkpoint=shared["checkpoint"], device=shared["device"], on_stage=step,
                              force=shared["force"])
        bar.update(task, completed=mine * 5, status="done")
    if isinstance(result, PartManifest):
        console.print(f"shard {shard_index} of {n}: {len(result.clips)} clips; run `avflow prep index` when all are done")
    else:
        console.print(f"{len(result.clips)} clips, {result.hours:.2f} h in {shard_dir or out / 'shards'} "
                      f"(train {len(result.split('train'))}, val {len(result.split('val'))}, test {len(result.split('test'))})")


def _option(name: str, annotation: object, default: object) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)


# The options `prep shards` and `prep all` share, declared once; `_with_shard_options` adds them to both.
SHARD_PARAMS = [
    _option("shard_dir", Optional[Path], typer.Option(None, help="Where shards and index.json go (default OUT/shards).")),
    _option("num_shards", Optional[int], typer.Option(None, help="Number of shards (default: one per 8 sessions). Session k goes to shard k mod N.")),
    _option("max_clip_seconds", float, typer.Option(60.0, help="Sessions longer than this are cut into near-equal clips.")),
    _option("min_clip_seconds", float, typer.Option(1.0, help="Sessions shorter than this are left out.")),
    _option("val_fraction", float, typer.Option(0.1, help="Fraction of sessions for validation (≥ 1 when there are ≥ 3 sessions).")),
    _option("test_fraction", float, typer.Option(0.1, help="Fraction of sessions for test (≥ 1 when there are ≥ 3 sessions).")),
    _option("seed", int, typer.Option(0, help="Seed of the deterministic session split.")),
    _option("participant", str, typer.Option("auto", help="Participant streams p_tokens/p_smirk: auto (when every session has them), yes, no.")),
    _option("length_tolerance_s", float, typer.Option(1.0, "--length-tolerance-s", help="Seconds the streams of one session may differ in length before it is an error.")),
    _option("tokens_source", str, typer.Option("auto", help="Token source for sessions without tokens yet (see `prep tokens`).")),
    _option("mel_from", str, typer.Option("vad", help="Mel from the VAD-cleaned actor channel (vad) or the raw channel (raw).")),
    _option("checkpoint", Optional[Path], typer.Option(None, help="Wav2Vec2 weights file for --tokens-source wav2vec2/auto.")),
    _option("device", str, typer.Option("cpu", help="Device for Wav2Vec2.")),
    _option("force", bool, typer.Option(False, help="Recompute every stage and shard instead of skipping finished work.")),
    _option("length_tolerance", Optional[float], typer.Option(None, "--length-tolerance", hidden=True, help="Deprecated name of --length-tolerance-s.")),
]


def _with_shard_options(command: Callable[..., None]) -> Callable[..., None]:
    """Give ``command`` (which ends in ``**shared``) the SHARD_PARAMS options after its own; Typer reads the signature."""
    own = [p for p in inspect.signature(command).parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
    command.__signature__ = inspect.Signature(own + SHARD_PARAMS)  # type: ignore[attr-defined]
    return command


@_with_shard_options
def shards(
    src: Path = typer.Argument(..., help=SRC_HELP),
    out: Path = typer.Argument(..., help=OUT_HELP),
    shard_index: Optional[int] = typer.Option(None, help="Write only this shard (0-based) and its partial manifest; for array jobs."),
    **shared: object,
) -> None:
    """Resample every stream to 86.13 fps, cut clips, write HDF5 shards + index.json (missing stages run first)."""
    _run_shards(src, out, shared, shard_index, "shards")


def index(shard_dir: Path = typer.Argument(..., help="Shard directory whose parts/ hold one partial manifest per shard.")) -> None:
    """Merge the partial manifests of `prep shards --shard-index` runs into index.json."""
    from avflow_cli.data.index import merge_parts

    idx = merge_parts(shard_dir)
    console.print(f"index.json: {len(idx.clips)} clips, {idx.hours:.2f} h, streams {sorted(idx.dims)}")


@_with_shard_options
def all_(
    src: Path = typer.Argument(..., help=SRC_HELP),
    out: Path = typer.Argument(..., help=OUT_HELP),
    nonspeech: str = typer.Option(VAD.nonspeech, help="VAD: non-speech in the cleaned channels: attenuate, zero or keep."),
    aggressiveness: int = typer.Option(VAD.aggressiveness, help="VAD: webrtcvad aggressiveness 0…3."),
    **shared: object,
) -> None:
    """vad → mel → tokens (actor and participant) → headpose → shards + index.json, one progress display."""
    cfg = VadConfig(aggressiveness=aggressiveness, nonspeech=nonspeech)
    cfg.validate()
    _run_shards(src, out, shared, None, "prep", cfg)


def register(app: typer.Typer) -> None:
    """Add vad, mel, tokens, headpose, shards, index and all to the `prep` group."""
    for name, command in (("vad", vad), ("mel", mel), ("tokens", tokens), ("headpose", headpose), ("shards", shards),
                          ("index", index), ("all", all_)):
        app.command(name)(command)
