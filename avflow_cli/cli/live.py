"""``avflow live``: the always-on avatar run on a recorded participant, paced in real time.

Everything is checked before the model runs (files, say/at pairs, times within the recording, the
output folder); a video in which no face is found in its first seconds is reported and the run goes
on audio-only. Ctrl-C or SIGTERM stops the run at that moment: the session is flushed and the
output folder written with everything up to there (exit 130 / 143). docs/live.md.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any, Optional

import numpy as np
import typer

from avflow_cli.console import err_console
from avflow_cli.cli.model_option import model_option
from avflow_cli.constants import FPS
from avflow_cli.errors import AvflowError

FACE_PROBE_FRAMES = 12  # frames of a participant video checked for a face before the run (first ~4 s)


def _check_says(says: list[str], ats: list[float], duration: float) -> list[tuple[float, str]]:
    from avflow_cli.text.sentences import text_problems

    if len(says) != len(ats):
        raise AvflowError(f"{len(says)} --say but {len(ats)} --at: give each line its time (--say TEXT --at SECONDS)")
    for at in ats:
        if not 0.0 <= at <= duration:
            raise AvflowError(f"--at {at:g}: outside the participant audio (0 … {duration:.2f} s)")
    for i, problem in enumerate(text_problems(says)):
        if problem is not None:
            raise AvflowError(f"--say {says[i]!r}: {problem}")
    return sorted(zip(ats, says))


def _video_has_face(video: Path) -> bool:
    """Whether the tracker finds a face in any of FACE_PROBE_FRAMES frames of the first seconds."""
    from avflow_cli.live.participant import ParticipantFace
    from avflow_cli.vision.video import iter_frames, probe_video

    info = probe_video(video)
    face = ParticipantFace(dim=1, rate=1e9)
    step = max(1, int(round(info.fps / 3)))
    k = seen = 0
    for batch in iter_frames(video, info=info, batch=8):
        for frame in batch:
            if k % step == 0:
                face.push(frame, k / info.fps)
                face.track()
                seen += 1
                if face.frames_without_face < face.frames_tracked:
                    return True
                if seen >= FACE_PROBE_FRAMES:
                    return False
            k += 1
    return False


class _Stop:
    """First Ctrl-C / SIGTERM: stop the run and write what exists; a second Ctrl-C aborts."""

    def __init__(self) -> None:
        self.signal: int | None = None
        self.previous: dict[int, Any] = {}

    def __enter__(self) -> _Stop:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self.previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signal is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signal = signum

    def __call__(self) -> bool:
        return self.signal is not None

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)


def live_command(
    out: Path = typer.Option(..., "--out", "-o", help="Output folder: speech.wav, motion.npz, preview.mp4, meta.json, live_stats.json."),
    participant_audio: Path = typer.Option(..., "--participant-audio", help="The user's voice (mono, or --participant-channel), ≥ 16 kHz."),
    participant_video: Optional[Path] = typer.Option(None, "--participant-video", help="The user's camera (its face is tracked, at most 10 frames/s)."),
    participant_channel: Optional[str] = typer.Option(None, "--participant-channel", help="Which channel of a multi-channel --participant-audio is the user, or 'mix'."),
    say: list[str] = typer.Option([], "--say", help="A line for the avatar to say (repeatable; each needs an --at)."),
    at: list[float] = typer.Option([], "--at", help="When to say the matching --say, in seconds of the participant audio."),
    model: Optional[str] = model_option(),
    fast: bool = typer.Option(False, "--as-fast-as-possible", help="Do not pace in real time: a fake clock follows the input (same output, latencies structural)."),
    seed: int = typer.Option(0, "--seed", help="Noise seed."),
    steps: Optional[int] = typer.Option(None, "--steps", min=1, max=64, help="Euler steps per chunk: fewer answer sooner and cost less (default: 4 on a CPU, the model's own on a GPU; docs/live.md measures what the avatar says at each)."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda, … or auto."),
    preview: bool = typer.Option(True, "--preview/--no-preview", help="Write preview.mp4 (the participant's video beside the avatar)."),
    force: bool = typer.Option(False, "--force", help="Replace an existing non-avflow folder at --out."),
) -> None:
    """Run the always-on avatar on a recorded participant, paced in real time.

    The avatar listens (its face reacts to the user's voice and face) and says each --say line at its
    --at time. What it streamed is written to --out; Ctrl-C stops early and still writes everything up
    to that moment.

    Example: avflow live -o out/ --participant-audio user.wav --participant-video user.mp4 --say "Hello there." --at 2 --model pretrained
    """
    from avflow_cli.live import LiveSession
    from avflow_cli.live.drive import FakeClock, drive
    from avflow_cli.live.record import LiveRecording, write_live_output
    from avflow_cli.participant.audio import check_participant_wav, read_participant_audio
    from avflow_cli.synth import Synthesizer
    from avflow_cli.vision.video import probe_video

    user = read_participant_audio(participant_audio, participant_channel)
    check_participant_wav(user.wav, user.sample_rate, str(participant_audio))
    script = _check_says(list(say), list(at), user.seconds)
    if participant_video is not None:
        probe_video(participant_video)
    with err_console.status("loading the model…"):
        synth = Synthesizer(model, device=device)
        synth.check_output(out, force=force)
        if script:
            synth.load_t2t()
    if participant_video is not None and synth.model.config.participant_visual_dim and not _video_has_face(participant_video):
        err_console.print(f"[yellow]warning:[/] {participant_video}: no face found in its first seconds; "
                          "continuing audio-only", highlight=False)
        participant_video = None
    clock = FakeClock() if fast else None
    session = LiveSession(synth, sample_rate=user.sample_rate, seed=seed, clock=clock, steps=steps)
    for note in session.notes:
        err_console.print(f"[dim]{note}[/]", highlight=False)
    rec = LiveRecording()
    err_console.print("listening… (Ctrl-C stops and writes what was streamed so far)", highlight=False)
    with _Stop() as stop, err_console.status("live: the avatar is listening…") as status:
        def on_output(o: Any) -> None:
            rec.add(o)
            status.update(f"live: {rec.frames / FPS:5.1f} s streamed")

        run = drive(session, user.wav, user.sample_rate, video=participant_video if synth.model.config.participant_visual_dim
                    else None, says=script, clock=clock, stop=stop, on_output=on_output)
    stats = session.stats.as_dict()
    stats["recognizer"] = _recognizer_stats(session)
    meta = {"mode": "live", "paced": "as fast as possible (fake clock)" if fast else "real time",
            "participant_audio": str(participant_audio), "participant_video": None if participant_video is None
            else str(participant_video), "says": [{"at": a, "text": t, "id": i} for (a, t), i in
                                                  zip(script, run["say_ids"])], "seed": seed,
            "stopped_early": run["stopped"], "notes": session.notes}
    with err_console.status("writing…"):
        write_live_output(synth, out, rec, stats=stats, meta=meta, participant_audio=user.wav,
                          participant_rate=user.sample_rate, participant_video=participant_video, preview=preview,
                          force=force)
    lat = stats["first_audio_latency"]
    summary = (f"wrote {out}/ ({rec.frames / FPS:.1f} s; real-time factor {stats['real_time_factor']:.2f}, "
               f"underruns {stats['underruns']}" + (f", first audio after say {1000 * float(np.median(lat)):.0f} ms" if lat else "") + ")")
    if run["stopped"]:
        sig = stop.signal or signal.SIGINT
        err_console.print(f"stopped at {run['stopped_at_s']:.1f} s: {summary}", highlight=False)
        raise typer.Exit(code=128 + int(sig))
    err_console.print(summary, highlight=False)


def _recognizer_stats(session: Any) -> dict[str, Any] | None:
    if session.tokens is None:
        return None
    rec = session.tokens.recognizer
    return {"transcript": rec.transcript(), "samples_decoded": rec.samples_decoded, "decoder_calls": rec.decoder_calls,
            "audio_s": session.stats.audio_in_s}


def register(app: typer.Typer) -> None:
    app.command("live", help=" ".join((live_command.__doc__ or "").split("\n\n")[0].split()))(live_command)

