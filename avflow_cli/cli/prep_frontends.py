"""``avflow prep smirk`` and ``avflow prep import a2p|asterisk|avflow50h|ljspeech|video``: option parsing only.

The work happens in :mod:`avflow_cli.vision.smirk` and :mod:`avflow_cli.data.importers`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from avflow_cli.cli.aliases import renamed
from avflow_cli.console import console

FORCE_HELP = "Redo sessions/files that already exist (default: skip finished work)."
OUT_SESSIONS_HELP = "Output tree of session folders (the SRC of `avflow prep all`)."
CHECKPOINT_HELP = (
    "SMIRK encoder checkpoint (SMIRK_em1.pt from georgeretsi/smirk) or a folder holding it; "
    "default: searched in $AVFLOW_CHECKPOINTS (~/.cache/avflow/checkpoints) and the torch hub cache."
)
DEVICE_HELP = "Where SMIRK runs: cpu, cuda, cuda:N or auto."
BATCH_HELP = "Video frames decoded and encoded per batch (memory stays at one batch)."


def _smirk_checkpoint(explicit: Path | None, video: Path) -> Path:
    """SMIRK's weights, looked up only once ``video`` is known to be a readable video (the error a
    user needs first)."""
    from avflow_cli.checkpoints import require_checkpoint
    from avflow_cli.vision.video import probe_video

    probe_video(video)
    return require_checkpoint("smirk", explicit)


TRACKERS = ("auto", "smirk", "landmarks")


def _video_face_checkpoint(tracker: str, explicit: Path | None, video: Path) -> Path | None:
    """SMIRK's weights for ``prep import video``, or None for the offline landmark tracker (said plainly)."""
    from avflow_cli.checkpoints import find_checkpoint
    from avflow_cli.errors import AvflowError
    from avflow_cli.participant.face_tracker import TRACKER_NAME
    from avflow_cli.vision.video import probe_video

    if tracker not in TRACKERS:
        raise AvflowError(f"unknown --tracker {tracker!r}; choose one of {', '.join(TRACKERS)}")
    if tracker == "landmarks" and explicit is not None:
        raise AvflowError("--checkpoint is SMIRK's; the landmark tracker takes none (drop one of the two)")
    if tracker == "smirk" or explicit is not None:
        return _smirk_checkpoint(explicit, video)
    probe_video(video)
    found = find_checkpoint("smirk") if tracker == "auto" else None
    if found is not None:
        return found
    why = "SMIRK_em1.pt not found" if tracker == "auto" else "--tracker landmarks"
    console.print(f"[yellow]{why}: face codes and head pose come from the offline face tracker "
                  f"({TRACKER_NAME}); they are not SMIRK's, and session.json says so[/yellow]")
    return None


def _print_report(report: object, what: str, out: Path) -> None:
    console.print(f"{what} → {out}: {report.summary()}")  # type: ignore[attr-defined]
    for name, reason in getattr(report, "skipped", [])[:20]:
        console.print(f"  skipped {name}: {reason}")


import_app = typer.Typer(no_args_is_help=True)
IMPORT_HELP = "Lay out published datasets or a video as sessions (and LJSpeech for text-to-tokens)."


def smirk(
    video: Path = typer.Argument(..., help="Video of a face (any format ffmpeg reads)."),
    out: Path = typer.Option(..., "-o", "--out", help="Output .npy of per-frame features; NAME.valid.npy and NAME.json are written beside it."),
    checkpoint: Path | None = typer.Option(None, "--checkpoint", help=CHECKPOINT_HELP),
    device: str = typer.Option("cpu", help=DEVICE_HELP),
    batch: int = typer.Option(32, min=1, help=BATCH_HELP),
    fps: float | None = typer.Option(None, min=0.1, help="Resample the video to this constant frame rate first (sessions use 30); default: the video's own rate."),
    layout: str = typer.Option("paper", help="paper: 56 = expression 50 + jaw 3 + head rotation 3; release: 58 = paper's 53 + eyelids 2 + rotation 3 (assumed release split, see docs/data_formats.md)."),
    crop_scale: float = typer.Option(1.4, min=1.0, help="Face crop side as a multiple of the detected face box (SMIRK's demo uses 1.4)."),
    force: bool = typer.Option(False, help=FORCE_HELP),
) -> None:
    """SMIRK features of every frame (faces found with OpenCV's Haar cascade); faceless frames marked invalid."""
    from avflow_cli.fsutil import check_output_file
    from avflow_cli.vision.smirk import smirk_sidecar_paths, write_smirk_features

    if layout not in ("paper", "release"):
        raise typer.BadParameter("use paper or release", param_hint="--layout")
    valid_path, meta_path = smirk_sidecar_paths(out)
    complete = out.is_file() and meta_path.is_file()  # an earlier run's: kept, or redone with --force
    for path in (out, valid_path, meta_path):  # a user's file is never overwritten silently, an input never
        check_output_file(path, force=force or complete or not path.exists(), protect=[video, checkpoint])
    result = write_smirk_features(
        video, out, _smirk_checkpoint(checkpoint, video), device=device, batch=batch, fps=fps,
        layout=layout, crop_scale=crop_scale, force=force,  # type: ignore[arg-type]
    )
    state = "exists, kept" if result["skipped"] else "written"
    console.print(
        f"{out} ({state}): {result['frames']} frames × {result['dim']} at {float(result['fps']):.3f} fps, "  # type: ignore[arg-type]
        f"face in {result['valid_frames']}"
    )

@import_app.command("a2p")
def import_a2p(
    src: Path = typer.Argument(..., help="Audio2Photoreal dataset/ folder (subject folders PXB184, …) or one subject folder."),
    out: Path = typer.Argument(..., help=OUT_SESSIONS_HELP),
    split_scheme: str = typer.Option("audio2photoreal", help="Split hint written to session.json: audio2photoreal (last 6 scenes per subject → 2 val + 4 test) or av_flow (last 2 → val)."),
    link_audio: bool = typer.Option(False, "--link-audio", help="Hard-link audio files instead of copying (same file system only)."),
    force: bool = typer.Option(False, help=FORCE_HELP),
    link: Optional[bool] = typer.Option(None, "--link", hidden=True, help="Deprecated name of --link-audio."),
) -> None:
    """Audio2Photoreal scenes → sessions (face codes, neck/head angles of body_pose as head pose, 2-ch audio)."""
    from avflow_cli.data.importers.a2p import import_a2p as run

    link_audio = renamed("--link", link, "--link-audio", link_audio)
    _print_report(run(src, out, split_scheme=split_scheme, link_audio=link_audio, force=force), "Audio2Photoreal", out)

@import_app.command("avflow50h")
def import_avflow50h(
    src: Path = typer.Argument(..., help="The authors' 50h_dataset/ folder (or the download folder holding it)."),
    out: Path = typer.Argument(..., help=OUT_SESSIONS_HELP),
    require_participant: bool = typer.Option(False, help="Skip segments without participant SMIRK files, as the release's loader does."),
    link_audio: bool = typer.Option(False, "--link-audio", help="Hard-link audio files instead of copying (same file system only)."),
    force: bool = typer.Option(False, help=FORCE_HELP),
    link: Optional[bool] = typer.Option(None, "--link", hidden=True, help="Deprecated name of --link-audio."),
) -> None:
    """AV-Flow 50 h segments → sessions (stereo 48 kHz audio, codes, [R|t], their tokens, participant SMIRK)."""
    from avflow_cli.data.importers.avflow50h import import_avflow50h as run

    link_audio = renamed("--link", link, "--link-audio", link_audio)
    report = run(src, out, require_participant=require_participant, link_audio=link_audio, force=force)
    _print_report(report, "50 h dataset", out)

@import_app.command("ljspeech")
def import_ljspeech(
    src: Path = typer.Argument(..., help="LJSpeech-1.1/ (metadata.csv + wavs/) or a corpus in the same layout."),
    out: Path = typer.Argument(..., help="Output folder for text-to-tokens training (metadata.csv, wavs/ at 22 050 Hz mono)."),
    limit: int | None = typer.Option(None, min=1, help="Import only the first N utterances (quick experiments)."),
) -> None:
    """Validate metadata.csv and wavs/, resample to 22 050 Hz mono, write the text-to-tokens layout."""
    from avflow_cli.data.importers.ljspeech import import_ljspeech as run

    _print_report(run(src, out, limit=limit), "LJSpeech", out)
    console.print(f"next: avflow prep tokens for {out}/tokens/ (50 Hz logits per utterance)")

@import_app.command("asterisk")
def import_asterisk(
    src: Path = typer.Argument(..., help="Unpacked asterisk-core-sounds-en package (usr/share/…) or a folder with core-sounds-en.txt[.gz] and the prompts (.g722 preferred, .wav fallback)."),
    out: Path = typer.Argument(..., help="Output folder: LJSpeech layout (metadata.csv, wavs/ at 22 050 Hz) + alignments/ + import.json; held-out prompts in OUT/heldout/."),
    hold_out: Path | None = typer.Option(None, "--hold-out", help="File of prompt names (one a line) kept out of training, written to OUT/heldout/."),
    limit: int | None = typer.Option(None, min=1, help="Import only the first N prompts (quick experiments)."),
    min_seconds: float = typer.Option(60.0, min=0.0, help="Refuse a corpus with less usable training speech than this."),
    min_score_ratio: Optional[float] = typer.Option(None, min=0.0, max=1.5, help="Skip a prompt whose text alignment scores below this share of the free phone loop (the text is not what is said); narrow-band (8 kHz) audio scores lower. Default: forced_alignment.MIN_SCORE_RATIO (0.93)."),
) -> None:
    """Force-align every prompt (pocketsphinx), skip doubtful ones with the reason, resample to 22 050 Hz."""
    from avflow_cli.data.importers.asterisk import import_asterisk as run
    from avflow_cli.data.importers.asterisk import read_list

    report = run(src, out, hold_out=read_list(hold_out) if hold_out else None, limit=limit, min_seconds=min_seconds,
                 min_score_ratio=min_score_ratio)
    _print_report(report, "Asterisk", out)
    console.print(f"skipped prompts and their reasons: {out}/import.json")
    console.print(f"next: avflow prep tokens {out} --source alignment")


@import_app.command("video")
def import_video(
    video: Path = typer.Argument(..., help="A talking-head video with sound (the speaker becomes the actor)."),
    out: Path = typer.Argument(..., help=OUT_SESSIONS_HELP),
    checkpoint: Path | None = typer.Option(None, "--checkpoint", help=CHECKPOINT_HELP),
    name: str | None = typer.Option(None, help="Session name (default: the video's file name without extension)."),
    fps: float = typer.Option(30.0, min=1.0, help="Face/head frame rate of the session; the video is resampled to it."),
    device: str = typer.Option("cpu", help=DEVICE_HELP),
    batch: int = typer.Option(32, min=1, help=BATCH_HELP),
    tracker: str = typer.Option("auto", help="Face tracker: smirk (needs SMIRK_em1.pt), landmarks (the offline "
                                "dlib tracker, demo-avatar parameters, not SMIRK) or auto (smirk when its weights "
                                "are found, else landmarks)."),
    force: bool = typer.Option(False, help=FORCE_HELP),
) -> None:
    """One video → an actor session: mono audio, face code and head rotation from SMIRK (or, offline, the landmark tracker)."""
    from avflow_cli.data.importers.video import import_video as run

    report = run(video, out, _video_face_checkpoint(tracker, checkpoint, video), name=name, fps=fps, device=device,
                 batch=batch, force=force)
    _print_report(report, "video", out)


def register(app: typer.Typer) -> None:
    """Add `smirk` and the `import` sub-group to the `prep` group."""
    app.command("smirk")(smirk)
    app.add_typer(import_app, name="import", help=IMPORT_HELP)
