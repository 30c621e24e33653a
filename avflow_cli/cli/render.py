"""``avflow render``: saved motion → avatar video with its speech (thin over :mod:`avflow_cli.render`)."""

from __future__ import annotations

import inspect
import json
import os
from pathlib import Path
from typing import Optional

import typer

from avflow_cli.console import console, err_console, progress
from avflow_cli.errors import AvflowError, InputFileError
from avflow_cli.output import META_NAME, MOTION_NAME, SPEECH_NAME


def _motion_path(motion: Path) -> Path:
    """A motion file, or a synth/eval output folder holding motion.npz."""
    if motion.is_dir():
        return motion / MOTION_NAME
    return motion


def _default_decoder(motion_path: Path) -> Path | None:
    """The renderer of the model that wrote the motion (meta.json beside it names the model)."""
    from avflow_cli.render.video import find_frame_source

    meta_path = motion_path.parent / META_NAME
    if not meta_path.is_file():
        return None
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    model = (meta.get("components") or {}).get("avflow")
    if not model or not Path(model).is_dir():
        return None
    return find_frame_source(model)


def _check_output(out: Path, force: bool, reads: list[Path | None]) -> None:
    """Fail before any work: a new file path (an existing one only with --force), never an input."""
    from avflow_cli.fsutil import check_output_file

    check_output_file(out, force=force, protect=reads)
    parent = out.parent if str(out.parent) else Path(".")
    probe = parent
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        raise AvflowError(f"{out}: cannot write here ({probe} is not a writable folder)")
    if out.exists() and not os.access(out, os.W_OK):
        raise AvflowError(f"{out}: exists and is not writable")


def _background(text: str) -> tuple[float, float, float]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError as err:
        raise AvflowError(f"--background must be R,G,B numbers in 0..255, got {text!r}") from err
    if len(values) != 3 or not all(0 <= v <= 255 for v in values):
        raise AvflowError(f"--background must be R,G,B numbers in 0..255, got {text!r}")
    return values  # type: ignore[return-value]


def render_command(
    motion: Path = typer.Argument(..., help="motion.npz (from `avflow synth`, `avflow eval` or another system in "
                                        "the same layout), or a folder holding it."),
    out: Path = typer.Option(..., "-o", "--out", help="Video file to write (H.264 mp4, 30 fps, with the speech)."),
    decoder: Optional[Path] = typer.Option(
        None, "--decoder",
        help="What draws the face: an avatar folder (MODEL/avatar, from `avflow import release`), the release's dataset "
             "folder (decoder/dec_params.pt, vert_mean.bin, vert_var.txt, face_topo_small_neck.obj), a model directory, "
             "or the demo avatar's face_decoder.npz. Default: the avatar of the model named in meta.json beside the motion.",
    ),
    audio: Optional[Path] = typer.Option(None, "--audio", help="Speech to mux (default: speech.wav beside the motion, if any)."),
    no_audio: bool = typer.Option(False, "--no-audio", help="Write a silent video."),
    size: Optional[int] = typer.Option(None, "--size", min=16, max=4096, help="Frame side in pixels (default: 1024 for "
                                       "codec avatars as in the release, 512 for the demo avatar)."),
    background: str = typer.Option("0,0,0", "--background", help="Background colour R,G,B (0..255; the release renders on black)."),
    device: str = typer.Option("auto", "--device", help="cpu, cuda, cuda:1 … or auto (GPU when present)."),
    force: bool = typer.Option(False, "--force", help="Replace an existing -o file. A file this command reads "
                               "(the motion, the speech, the decoder) is never replaced."),
) -> None:
    """Render saved face and head motion to a video with its speech.

    Example: avflow render out/motion.npz -o out/face.mp4 --decoder models/avflow/avatar

    The motion layout: 'face' (T, F) codes, optional 'fps' (default 86.13), optional
    'head_pose' (T, 7) = quaternion w,x,y,z + translation in mm (or 'head_R' (T, 3, 3) and
    'head_t' (T, 3)); without a head pose the avatar keeps the release's default pose. The
    video is resampled to 30 fps, as the release renders; its pixels are drawn by a PyTorch
    rasteriser (no DRTK, no compiler), on the GPU when there is one.
    """
    from avflow_cli.render.motion import load_motion
    from avflow_cli.render.video import find_frame_source, frame_count, open_frame_source, render_motion

    motion_path = _motion_path(motion)
    speech = None if no_audio else (audio or (motion_path.parent / SPEECH_NAME))
    # every file this command may read: -o may be none of them, not even with --force
    _check_output(out, force, [motion_path, motion_path.parent / META_NAME, speech, audio, decoder])
    data = load_motion(motion_path)
    bg = _background(background)
    if decoder is None:
        decoder = _default_decoder(motion_path)
        if decoder is None:
            raise AvflowError(f"{motion_path}: no face decoder known for this motion; give --decoder (an avatar folder, "
                              "the release's dataset folder or a demo face_decoder.npz)")
    elif decoder.is_dir():
        decoder = find_frame_source(decoder) or decoder  # a model directory: the avatar it carries
    _check_output(out, force, [decoder])
    wav, sr = None, None
    if speech is not None:
        if audio is not None and not audio.is_file():
            raise InputFileError(audio, "file not found")
        if speech.is_file():
            from avflow_cli.audio.io import read_audio

            wav, sr = read_audio(speech)
    with err_console.status("loading the avatar…"):
        source = open_frame_source(decoder, size=size, device=device)
    if hasattr(source, "background"):
        source.background = bg
    source.check(data.face)
    total = frame_count(data.frames, data.fps)
    with progress() as bar:
        task = bar.add_task("rendering", total=total, status=source.name)
        try:
            render_motion(out, data.face, data.head_pose, data.fps, source, audio=wav, audio_sr=sr,
                          on_frame=lambda: bar.update(task, advance=1))
        except OSError as err:  # e.g. the folder refuses new files: nothing was left behind
            raise AvflowError(f"{out}: cannot write the video ({err.strerror or err})") from err
    speech_note = "silent" if wav is None else "with speech"
    console.print(f"wrote {out} ({total} frames at 30 fps, {data.seconds:.1f} s, {speech_note}; {source.name})")


def register(app: typer.Typer) -> None:
    """Add ``avflow render``; the help is the docstring with its paragraphs re-flowed."""
    paragraphs = inspect.cleandoc(render_command.__doc__ or "").split("\n\n")
    app.command("render", help="\n\n".join(" ".join(p.split()) for p in paragraphs))(render_command)
