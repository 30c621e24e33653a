"""``avflow synth`` options for the listening avatar and streaming, kept apart from the synth command body.

The command passes its options here; this module loads the participant through the
``Synthesizer`` (one line per warning, so the user sees which extractor ran) and runs ``--stream``.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Any, Optional


from avflow_cli.console import err_console

PARTICIPANT_HELP = (
    "The user the avatar listens to (a model trained with guidance, `--config dyadic`). Tokens come "
    "from the extractor the model was trained with: Wav2Vec2 when its weights are present; for models "
    "trained on alignment tokens (the demo), pocketsphinx recognition + forced alignment turned into the "
    "same character posteriors (an offline substitute that works on any English speech). Must be ≥ 16 kHz "
    "(8 kHz is refused) and not silent; a stereo file needs --participant-channel. Shorter than the "
    "avatar's speech: padded with silence; longer: the avatar listens after it has spoken."
)
VIDEO_HELP = ("The user's face video: SMIRK when its weights are present (and the model was not trained on demo "
              "features), else the offline dlib landmark tracker mapped to the demo's 56-d SMIRK layout. "
              "meta.json says which ran.")
FEATURES_HELP = ("Precomputed participant features instead of a video (.npz with 'features' [+ 'fps'], or a .npy "
                 "from `avflow prep smirk`); their width must be the model's (56 or 58).")
TEMPERATURE_HELP = ("Scale of AV-Flow's starting noise (0-2): below 1 trades variety for clarity; default: the "
                    "model's own (config.json model.temperature; the shipped demo model's is set from docs/quality.md).")
TOKEN_GAIN_HELP = ("How strongly AV-Flow follows its tokens (0-4]: their normalised values are multiplied by this "
                   "before sampling; above 1 a model trained on minutes of one real voice speaks more clearly; "
                   "default: the model's own (config.json model.token_gain; set from docs/quality.md for the shipped models).")
CHANNEL_HELP = "Which channel of a multi-channel --participant-audio is the user (0, 1, …), or 'mix' to average them."
EXTRACTOR_HELP = "Participant tokens: auto (the extractor the model was trained with), wav2vec2, pocketsphinx."
FACE_HELP = "Participant face from --participant-video: auto, smirk (needs SMIRK_em1.pt), tracker (offline dlib landmarks)."
STREAM_HELP = ("Write speech.wav chunk by chunk as it is generated and report the time to first audio "
               "(motion.npz and meta.json at the end; the folder appears when the stream is complete).")
SCHEDULE_HELP = ("--stream schedule: exact = equal to offline output, each frame final once steps×depth×window_right "
                 "later frames are known; low-latency = chunks with a short look-ahead, close to offline.")


class Schedule(str, Enum):
    exact = "exact"
    low_latency = "low-latency"


class TokenExtractor(str, Enum):
    auto = "auto"
    wav2vec2 = "wav2vec2"
    pocketsphinx = "pocketsphinx"


class FaceExtractor(str, Enum):
    auto = "auto"
    smirk = "smirk"
    tracker = "tracker"


def load_participant(synth: Any, participant_audio: Optional[Path], participant_video: Optional[Path],
                     participant_features: Optional[Path], participant_channel: Optional[str],
                     participant_extractor: TokenExtractor, participant_face: FaceExtractor) -> Any:
    """The Participant for the CLI options (None without --participant-audio), warnings printed."""
    if participant_audio is None and participant_video is None and participant_features is None:
        return None
    if participant_audio is not None:  # the timeline is as long as the participant: bounded before reading
        from avflow_cli.checks import check_recording

        check_recording(participant_audio, "--participant-audio")
    with err_console.status("reading the participant…"):
        part = synth.prepare_participant(participant_audio, video=participant_video, features=participant_features,
                                         channel=participant_channel, token_extractor=participant_extractor.value,
                                         face=participant_face.value)
    for warning in part.warnings:
        err_console.print(f"[yellow]warning:[/] {warning}", highlight=False, soft_wrap=True)
    rec = part.record
    if "tokens" in rec:
        err_console.print(f"participant tokens: {rec['tokens']['extractor']}", highlight=False, soft_wrap=True)
    if "visual" in rec:
        err_console.print(f"participant face: {rec['visual']}", highlight=False, soft_wrap=True)
    return part


def run_stream(synth: Any, text: str, out: Path, *, participant: Any, seed: int, steps: Optional[int], speed: float,
               schedule: Schedule, chunk_frames: Optional[int], lookahead: Optional[int], force: bool) -> None:
    """``avflow synth --stream``: write chunks as they come; report time to first audio."""
    from avflow_cli.console import console
    from avflow_cli.models.streaming import exact_lookahead
    from avflow_cli.stream import write_stream

    steps_n = synth.model.config.steps if steps is None else steps
    if schedule == Schedule.exact:
        err_console.print(f"exact schedule: a frame is final once {exact_lookahead(synth.model.config, steps_n)} "
                          "frames after it are known (steps × depth × window_right)", highlight=False)
    first: dict[str, float] = {}

    def on_chunk(chunk: Any) -> None:
        if len(chunk.wav) and "audio" not in first:
            first["audio"] = chunk.elapsed
            err_console.print(f"first audio after {chunk.elapsed * 1000:.0f} ms", highlight=False)

    chunks = synth.stream(text, participant=participant, seed=seed, steps=steps, speed=speed, schedule=schedule.value,
                          chunk_frames=chunk_frames, lookahead=lookahead)
    meta = {"text": text, "seed": seed, "steps": steps_n, "speed": speed}
    if participant is not None:
        meta["participant"] = {**participant.record, "warnings": participant.warnings}
    path, stats = write_stream(synth, chunks, out, meta=meta, force=force, on_chunk=on_chunk)
    console.print(f"streamed {stats.samples / synth.vocoder.sample_rate:.2f} s in {stats.chunks} chunks "
                  f"({schedule.value}): first audio {(stats.first_audio_s or 0.0) * 1000:.0f} ms, "
                  f"RTF {stats.real_time_factor(synth.vocoder.sample_rate):.2f}; wrote {path}", highlight=False)
