"""``avflow eval``: the paper's metrics on a test split, and ``avflow eval compare`` for a results table."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer
from rich import box
from rich.table import Table

from avflow_cli.cli.aliases import renamed as _renamed
from avflow_cli.console import console
from avflow_cli.errors import AvflowError

app = typer.Typer(
    no_args_is_help=True,
    invoke_without_command=True,
    help=(
        "Compute the AV-Flow metrics (F1 lips/smiles, FD_e, Div_e/Div_h, BC_e/BC_h, MCD, WER, speed) "
        "on a test split, from a model (--model) or from another system's outputs (--from-dir)."
    ),
)


def _table(results: list[dict[str, Any]], title: str) -> Table:
    from avflow_cli.metrics.report import TABLE_COLUMNS, header, table_rows

    table = Table(title=title, box=box.SIMPLE_HEAD, padding=(0, 1, 0, 0))
    table.add_column("run", style="bold", overflow="fold")
    for key, _, _ in TABLE_COLUMNS:
        table.add_column(header(key).replace(" ", "\n"), justify="right", no_wrap=True)
    rows = table_rows(results, compact=True)
    for row in rows:
        style = "dim" if row[0] == "ground truth" else None
        table.add_row(*row, style=style)
    return table


def _print_result(result: dict[str, Any], out_dir: Path) -> None:
    console.print(_table([result], f"{result['name']} — {result['split']} ({result['clips']} clips)"))
    s = result["settings"]
    console.print(
        f"face decoder: {s['face_decoder'] or 'none (F1 lips/smiles skipped)'} · ASR: {s['asr_backend'] or 'off'}"
        f" (reference: {s['wer_reference'] or '-'}) · MCD from {s['mcd_source']} · BC σ = {s['beat_sigma_s']} s"
    )
    if result.get("speed"):
        parts = ", ".join(f"{k} {v:.2f}" for k, v in result["speed"].items() if isinstance(v, float))
        console.print(f"speed (s per 20 s): {parts}")
    console.print(f"wrote {out_dir / 'metrics.json'}, {out_dir / 'metrics.md'}, plots in {out_dir / 'plots'}")


@app.callback()
def evaluate(
    ctx: typer.Context,
    model: Optional[str] = typer.Option(
        None, "--model", help="AV-Flow model directory (config.json + weights), or a shipped model (pretrained, "
        "real-voice): generate every test clip, then score it.", show_default=False,
    ),
    data: Optional[Path] = typer.Option(None, "--data", help="Shard directory with index.json: the ground truth."),
    from_dir: Optional[Path] = typer.Option(
        None, "--from-dir", help="Score another system's outputs: GEN/CLIP_ID/ (one folder per test clip id, as `avflow synth` writes) with motion.npz [face (T,F) required; head_pose (T,7) quaternion wxyz + translation mm, mel (T,80) log-mel, fps optional], speech.wav [any rate; needed unless motion.npz has mel], meta.json [text, timings_s; optional]."
    ),
    split: str = typer.Option("test", "--split", help="Manifest split to evaluate: train, val or test."),
    out: Optional[Path] = typer.Option(
        None, "--out", help="Output folder (default: MODEL/eval/SPLIT; eval/NAME/SPLIT for a shipped model, whose "
        "package folder is never written; GEN/eval for --from-dir)."
    ),
    from_text: bool = typer.Option(False, "--from-text", help="Generate from each clip's text through text-to-tokens instead of its ground-truth tokens."),
    texts: Optional[Path] = typer.Option(None, "--texts", help='JSON {"clip_id": "text"}: WER references and --from-text inputs (default: the shards\' text attributes).'),
    t2t: Optional[Path] = typer.Option(None, "--t2t", help="Text-to-tokens model directory (default: the one recorded beside the model)."),
    head_vae: Optional[Path] = typer.Option(None, "--head-vae", help="Head-VAE directory (default: the one recorded beside the model)."),
    steps: Optional[int] = typer.Option(None, "--steps", help="Euler steps (default: the model config's)."),
    seed: int = typer.Option(0, "--seed", help="Sampling seed; the same seed gives the same outputs."),
    face_decoder: Optional[Path] = typer.Option(
        None, "--face-decoder", help="Face code → lip/mouth-corner distances: demo face_decoder.npz, a linear map .npz {W (F,2), b (2,)} or TorchScript (default: face_decoder.npz beside the shards)."
    ),
    lip_threshold: Optional[float] = typer.Option(None, "--lip-threshold", help="Lips closed below this inner-lip distance (default: the decoder's; demo: 2.5 mm)."),
    smile_threshold: Optional[float] = typer.Option(None, "--smile-threshold", help="Smile above this mouth-corner distance (default: the decoder's; demo: 57 mm)."),
    beat_sigma_s: float = typer.Option(0.05, "--beat-sigma-s", help="σ of the Beat Align Score in seconds (0.05 = AIST++/Bailando's 3 frames at 60 fps; EMAGE uses 0.3)."),
    mcd_order: int = typer.Option(24, "--mcd-order", help="Mel-cepstral coefficients c1..cN compared by MCD (c0 excluded)."),
    wer: bool = typer.Option(True, "--wer/--no-wer", help="Transcribe generated and ground-truth speech for WER (slowest metric)."),
    asr_backend: str = typer.Option("auto", "--asr-backend", help="ASR backend for WER: auto (Wav2Vec2 if its weights are present, else pocketsphinx), wav2vec2, pocketsphinx, whisper (a CTranslate2 Whisper folder found like a checkpoint) or whisper:DIR. Run eval once per recogniser to report a WER with two."),
    vocoder: str = typer.Option("auto", "--vocoder", help="Vocoder for generation and ground-truth audio: auto, bigvgan, hifigan, student, griffinlim."),
    vocoder_checkpoint: Optional[Path] = typer.Option(None, "--vocoder-checkpoint", help="Vocoder weights (default: the checkpoint search path)."),
    device: str = typer.Option("auto", "--device", help="auto (CUDA when available), cpu, cuda, cuda:N."),
    plots: int = typer.Option(3, "--plots", help="Write Fig. 6/9-style PNGs for this many clips (0: none)."),
    name: Optional[str] = typer.Option(None, "--name", help="Row name in tables (default: the model or GEN folder name)."),
    measure_speed: bool = typer.Option(True, "--measure-speed/--no-measure-speed", help="Time each stage on a 20 s input (with --model)."),
    beat_sigma: Optional[float] = typer.Option(None, "--beat-sigma", hidden=True, help="Deprecated name of --beat-sigma-s."),
    asr: Optional[str] = typer.Option(None, "--asr", hidden=True, help="Deprecated name of --asr-backend."),
    speed: Optional[bool] = typer.Option(None, "--speed/--no-speed", hidden=True, help="Deprecated name of --measure-speed."),
    truth: Optional[Path] = typer.Option(None, "--truth", hidden=True, help="Deprecated name of --data (a shard folder is --data everywhere)."),
) -> None:
    """Score a model or a folder of generated clips on a test split (paper §4, Tables 1-3).

    GEN layout (what `avflow synth` writes, one folder per test clip id): motion.npz with
    face (T, F) [required], head_pose (T, 7) quaternion wxyz + translation mm, mel (T, 80)
    natural-log mel, fps (default 86.13); speech.wav (any rate; required unless motion.npz has
    mel); meta.json {"text", "timings_s": {stage: s}, "seconds"} (optional).

    Examples:
      avflow eval --model runs/avflow --data prep/shards --split test
      avflow eval --model pretrained --data demo_out/prep/shards
      avflow eval --from-dir baseline_out --truth prep/shards
      avflow eval compare runs/highway runs/separate runs/shared runs/cascade
    """
    if ctx.invoked_subcommand is not None:
        return
    from avflow_cli.evaluate import EvalSettings, evaluate_dir, evaluate_model

    data = _renamed("--truth", truth, "--data", data)
    if data is None:
        raise AvflowError("give the ground-truth shards with --data SHARDS")
    if (model is None) == (from_dir is None):
        raise AvflowError("give exactly one of --model RUN (generate, then score) or --from-dir GEN (score existing outputs)")
    if from_text and model is None:
        raise AvflowError("--from-text generates with a model: use it with --model")
    from avflow_cli.cli.checks import check_seed, check_steps

    check_steps(steps)
    check_seed(seed)
    beat_sigma_s = _renamed("--beat-sigma", beat_sigma, "--beat-sigma-s", beat_sigma_s)
    asr_backend = _renamed("--asr", asr, "--asr-backend", asr_backend)
    measure_speed = _renamed("--speed/--no-speed", speed, "--measure-speed/--no-measure-speed", measure_speed)
    settings = EvalSettings(
        face_decoder=str(face_decoder) if face_decoder else None,
        lip_threshold=lip_threshold,
        smile_threshold=smile_threshold,
        beat_sigma_s=beat_sigma_s,
        mcd_order=mcd_order,
        wer=wer,
        asr_backend=asr_backend,
        vocoder=vocoder,
        vocoder_checkpoint=str(vocoder_checkpoint) if vocoder_checkpoint else None,
        texts=str(texts) if texts else None,
        device=device,
        plots=plots,
    )
    if model is not None:
        from avflow_cli.shipped import choose_model

        choice = choose_model(model)
        run = f"{split}-text" if from_text else split
        out_dir = out or (Path("eval") / choice.name / run if choice.name else choice.path / "eval" / run)
        result = evaluate_model(choice.path, data, split=split, out_dir=out_dir, steps=steps, seed=seed, from_text=from_text,
                                t2t=t2t, head_vae=head_vae, settings=settings, name=name or choice.name,
                                measure_speed=measure_speed)
    else:
        out_dir = out or from_dir / "eval"
        result = evaluate_dir(from_dir, data, split=split, out_dir=out_dir, settings=settings, name=name)
    _print_result(result, out_dir)


@app.command("compare")
def compare(
    runs: list[Path] = typer.Argument(..., help="Runs to compare: model dirs (their eval/SPLIT), eval folders or metrics.json files."),
    split: str = typer.Option("test", "--split", help="Which evaluation of a model dir to read."),
    out: Optional[Path] = typer.Option(None, "--out", help="Also write the table as Markdown to this file."),
) -> None:
    """One table, one row per run, in the paper's Table 1 layout (from each run's metrics.json)."""
    from avflow_cli.fsutil import atomic_path
    from avflow_cli.metrics.report import load_result, markdown_table

    results = [load_result(r, split) for r in runs]
    names = [r.get("name") for r in results]
    for res, path in zip(results, runs):  # keep rows distinguishable when names collide
        if names.count(res.get("name")) > 1:
            res["name"] = f"{res.get('name')} ({path})"
    console.print(_table(results, f"comparison ({split})"))
    truths = {r.get("truth") for r in results}
    if len(truths) > 1:
        console.print("[yellow]note:[/] the runs were scored on different ground truth; rows are not comparable")
    if out is not None:
        with atomic_path(out) as tmp:
            tmp.write_text(markdown_table(results) + "\n")
        console.print(f"wrote {out}")
