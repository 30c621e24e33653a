"""What a live session streamed, kept and written as a synth-style output folder.

:class:`LiveRecording` appends each :class:`~avflow_cli.live.LiveOutput`; :func:`write_live_output`
writes ``speech.wav``, ``motion.npz``, ``meta.json``, ``live_stats.json`` and ``preview.mp4`` (the
participant's video beside the avatar, both voices mixed) into one folder, atomically (a run
stopped while writing leaves nothing half-written). The writing is this one function, on the same
primitives as ``Synthesizer.save`` (``fsutil.atomic_dir``, ``audio.io.write_audio``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from avflow_cli import constants as K


class LiveRecording:
    """Concatenates live outputs; checks they arrive in order on one clock."""

    def __init__(self) -> None:
        self.parts: dict[str, list[np.ndarray]] = {"wav": [], "face": [], "head_pose": [], "head_latent": [], "mel": []}
        self.events: list[dict[str, Any]] = []
        self.frames = 0
        self.samples = 0

    def add(self, out: Any) -> None:
        if out.start != self.frames or out.wav_start != self.samples:
            raise RuntimeError(f"live output out of order: frame {out.start} / sample {out.wav_start}, "
                               f"expected {self.frames} / {self.samples}")
        for key in self.parts:
            value = getattr(out, key)
            if value is not None and len(value):
                self.parts[key].append(value)
        self.frames += out.frames
        self.samples += len(out.wav)
        self.events.extend(out.events)

    def array(self, key: str, width: int = 0) -> np.ndarray:
        parts = self.parts[key]
        if parts:
            return np.concatenate(parts).astype(np.float32)
        return np.zeros((0, width) if width else 0, np.float32)


def mixed_audio(avatar: np.ndarray, participant: np.ndarray | None, participant_rate: int) -> np.ndarray:
    """The avatar's speech with the participant's voice under it (both at SAMPLE_RATE, clipped)."""
    if participant is None or not len(participant):
        return np.clip(avatar, -1.0, 1.0)
    from avflow_cli.audio.io import resample

    p = resample(np.asarray(participant, np.float32), int(participant_rate), K.SAMPLE_RATE).numpy()
    n = len(avatar)
    p = np.pad(p[:n], (0, max(0, n - len(p))))
    return np.clip(avatar + 0.7 * p, -1.0, 1.0).astype(np.float32)


def write_preview(path: Path, face_decoder: Path | None, rec: LiveRecording, audio: np.ndarray,
                  video: Path | None, size: int = 256) -> str:
    """The avatar (its renderer at ``size``²) beside the participant's video (scaled to the same
    height), 30 fps, with ``audio``; returns what was drawn."""
    import shutil

    from avflow_cli.render.video import VIDEO_FPS, encode_mp4, open_frame_source, to_video_rate

    if shutil.which("ffmpeg") is None:
        return "none (ffmpeg not found)"
    if face_decoder is None:
        return "none (the model carries no avatar renderer)"
    if rec.frames == 0:
        return "none (nothing streamed)"
    source = open_frame_source(face_decoder, size=size, device="cpu")
    face, pose = to_video_rate(rec.array("face"), rec.array("head_pose", 7), K.FPS, VIDEO_FPS)
    avatar = source.frames(face, pose)
    side = source.size + source.size % 2
    if video is None:
        frames = (np.pad(f, ((0, side - f.shape[0]), (0, side - f.shape[1]), (0, 0)), mode="edge") for f in avatar)
        encode_mp4(path, frames, side, VIDEO_FPS, audio=audio, audio_sr=K.SAMPLE_RATE)
        return f"{source.name}"
    from PIL import Image

    from avflow_cli.vision.video import iter_frames, probe_video

    info = probe_video(video)
    width = int(round(info.width * side / info.height)) // 2 * 2
    user = (np.asarray(Image.fromarray(f).resize((width, side), Image.BILINEAR))
            for batch in iter_frames(video, fps=VIDEO_FPS, info=info) for f in batch)
    blank = np.zeros((side, width, 3), np.uint8)

    def pairs() -> Any:
        for a in avatar:
            a = np.pad(a, ((0, side - a.shape[0]), (0, side - a.shape[1]), (0, 0)), mode="edge")
            yield np.concatenate([next(user, blank), a], axis=1)

    encode_mp4(path, pairs(), (width + side, side), VIDEO_FPS, audio=audio, audio_sr=K.SAMPLE_RATE)
    return f"participant video | {source.name}"


def write_live_output(synth: Any, out_dir: str | Path, rec: LiveRecording, *, stats: dict[str, Any],
                      meta: dict[str, Any], participant_audio: np.ndarray | None = None, participant_rate: int = 16000,
                      participant_video: Path | None = None, preview: bool = True, force: bool = False) -> Path:
    """Write what the avatar streamed into ``out_dir`` (module docstring); returns it."""
    from avflow_cli import __version__
    from avflow_cli.output import LIVE_STATS_NAME, META_NAME, MOTION_NAME, PREVIEW_NAME, SPEECH_NAME, OutputFolder

    out_dir = Path(out_dir)
    wav = rec.array("wav")
    face_dim = synth.model.config.face_dim
    with OutputFolder(out_dir, kind=K.SYNTH_OUTPUT_KIND, force=force, protect=getattr(synth, "reads", [])) as folder:
        folder.write_audio(SPEECH_NAME, np.clip(wav, -1.0, 1.0), K.SAMPLE_RATE)
        folder.write_npz(MOTION_NAME, face=rec.array("face", face_dim), head_pose=rec.array("head_pose", 7),
                         head_latent=rec.array("head_latent", synth.model.config.head_dim),
                         mel=rec.array("mel", K.N_MELS), fps=np.float64(K.FPS))
        kind = "none"
        if preview:
            kind = write_preview(folder.file(PREVIEW_NAME), synth.face_decoder_path, rec,
                                 mixed_audio(wav, participant_audio, participant_rate), participant_video)
        full = {**meta, "fps": K.FPS, "sample_rate": K.SAMPLE_RATE, "frames": rec.frames,
                "seconds": rec.samples / K.SAMPLE_RATE, "components": synth.components, "temperature": synth.temperature,
                "token_gain": synth.token_gain,
                "events": rec.events, "preview": kind, "avflow_version": __version__}
        folder.write_json(LIVE_STATS_NAME, stats)
        folder.write_json(META_NAME, full)
    return out_dir
