"""``avflow converse``: a dialogue file in, the avatar's side of the whole conversation out."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from avflow_cli.cli.listening import TEMPERATURE_HELP, TOKEN_GAIN_HELP, FaceExtractor, TokenExtractor
from avflow_cli.console import console, err_console
from avflow_cli.cli.model_option import model_option


def converse_command(
    dialogue: Path = typer.Argument(..., help="Dialogue file (.toml or .yaml): [[turns]] with avatar = \"text\" or user = \"speech.wav\" (+ video/features, channel, pause)."),
    out: Path = typer.Option(..., "-o", "--out", help="Output folder: speech.wav, conversation.wav (avatar | user), motion.npz, meta.json, preview.mp4."),
    model: Optional[str] = model_option("A model trained with participant guidance listens."),
    t2t: Optional[Path] = typer.Option(None, "--t2t", help="Text-to-tokens model directory (default: recorded in the model's config, or ../t2t)."),
    head_vae: Optional[Path] = typer.Option(None, "--head-vae", help="Head-pose VAE directory (default: recorded, or ../headvae)."),
    steps: Optional[int] = typer.Option(None, "--steps", help="Euler steps (default: the dialogue's 'steps', else the model's)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Random seed (default: the dialogue's 'seed', else 0)."),
    temperature: Optional[float] = typer.Option(None, "--temperature", help=TEMPERATURE_HELP),
    token_gain: Optional[float] = typer.Option(None, "--token-gain", help=TOKEN_GAIN_HELP),
    device: str = typer.Option("auto", "--device", help="cpu, cuda, cuda:1 … or auto."),
    vocoder: str = typer.Option("auto", "--vocoder", help="auto, bigvgan, hifigan or griffinlim (as avflow synth)."),
    participant_extractor: TokenExtractor = typer.Option(TokenExtractor.auto, "--participant-extractor", help="User tokens: auto (the model's extractor; pocketsphinx substitute for alignment-token models), wav2vec2, pocketsphinx."),
    participant_face: FaceExtractor = typer.Option(FaceExtractor.auto, "--participant-face", help="User face from video: auto, smirk, tracker (offline dlib landmarks → demo SMIRK layout)."),
    no_preview: bool = typer.Option(False, "--no-preview", help="Skip preview.mp4."),
    force: bool = typer.Option(False, "--force", help="Write into an existing -o that avflow did not write as a converse "
                               "output: only avflow's own files there are replaced. The dialogue, its recordings and the "
                               "model are never replaced."),
) -> None:
    """A whole conversation on one timeline: the avatar speaks its lines and listens during the user's turns.

    Example dialogue (TOML):

        [[turns]]
        avatar = "Hi! How was your day?"

        [[turns]]
        user = "day.wav"
        video = "day.mp4"

    meta.json records which extractors ran for the user's tokens and face.
    """
    from avflow_cli.checks import check_seed, check_steps, check_temperature, check_token_gain
    from avflow_cli.converse import OUTPUT_KIND, converse, load_dialogue
    from avflow_cli.fsutil import check_output_dir
    from avflow_cli.synth import Synthesizer

    check_steps(steps)
    if seed is not None:
        check_seed(seed)
    if temperature is not None:
        check_temperature(temperature)
    if token_gain is not None:
        check_token_gain(token_gain)
    parsed = load_dialogue(dialogue)  # a malformed file fails before any model loads
    check_output_dir(out, kind=OUTPUT_KIND, force=force, protect=[model, t2t, head_vae, *parsed.inputs])
    with err_console.status("loading models…"):
        synth = Synthesizer(model, t2t=t2t, head_vae=head_vae, vocoder=vocoder, device=device, temperature=temperature,
                            token_gain=token_gain)
    with err_console.status("generating the conversation…"):
        path, meta = converse(synth, dialogue, out, seed=seed, steps=steps, token_extractor=participant_extractor.value,
                              face=participant_face.value, preview=not no_preview, force=force)
    for warning in meta["participant"].get("warnings", []):
        err_console.print(f"[yellow]warning:[/] {warning}", highlight=False, soft_wrap=True)
    tokens = meta["participant"].get("tokens")
    if tokens:
        err_console.print(f"user tokens: {tokens['extractor']}", highlight=False, soft_wrap=True)
    users = sum(t["speaker"] == "user" for t in meta["turns"])
    console.print(f"conversation of {len(meta['turns'])} turns ({users} user) — {meta['seconds']:.2f} s; wrote "
                  f"{path / 'speech.wav'}, {path / 'conversation.wav'}, {path / 'motion.npz'}, {path / 'meta.json'}"
                  + (f", {path / 'preview.mp4'} ({meta['preview']})" if (path / "preview.mp4").exists() else ""),
                  highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add `avflow converse` to the root app."""
    app.command("converse", help="A dialogue (avatar lines + user turns) → the listening avatar's whole conversation.")(converse_command)
