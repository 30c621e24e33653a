"""Streaming output behind ``Synthesizer.stream`` (and, through the live session, ``Synthesizer.listen``).

:class:`AvatarStream` turns normalised cond rows into :class:`StreamChunk` s: the sampler of
``models/streaming.py`` (exact or low-latency schedule) gives x1 rows, which are denormalised and
split into face / head latent / mel; mel goes through :class:`~avflow_cli.models.streaming.StreamingVocoder`;
head latents are decoded to poses by the head VAE — in the exact schedule per whole decoder
window (the VAE's attention spans ``encode_chunk`` frames, so poses arrive per window, equal to
offline), in the low-latency schedule per chunk.

Listening (recorded or live participant input) is :mod:`avflow_cli.live`, which drives an
:class:`AvatarStream`; ``Synthesizer.listen_session`` is its input-time driver (live/listen.py).

Streamed audio is not peak-normalised (offline output is, when a vocoder overshoots); writers clip.
Letters: T frames at FPS, X = F + 8 + 80.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from avflow_cli import constants as K
from avflow_cli.errors import AvflowError
from avflow_cli.models.streaming import StreamingVocoder, make_sampler

DEFAULT_CHUNK = 16  # frames (186 ms) per low-latency chunk / exact emission step


@dataclass
class StreamChunk:
    """Avatar output that became final: motion for frames [start, start + n), audio for samples
    [wav_start, wav_start + len(wav)), head poses for frames [head_pose_start, … + len(head_pose))."""

    start: int
    face: np.ndarray  # (n, F)
    head_latent: np.ndarray  # (n, 8)
    mel: np.ndarray  # (n, 80)
    wav: np.ndarray  # (m,)
    wav_start: int
    head_pose: np.ndarray | None = None  # (k, 7)
    head_pose_start: int = 0
    elapsed: float = 0.0  # seconds since the stream started
    input_frames: int = 0  # cond frames received when this chunk was emitted (live: input time × FPS)

    @property
    def frames(self) -> int:
        return len(self.mel)


@dataclass
class StreamStats:
    """What a finished stream measured."""

    first_audio_s: float | None = None
    first_motion_s: float | None = None
    total_s: float = 0.0
    frames: int = 0
    samples: int = 0
    chunks: int = 0
    schedule: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def real_time_factor(self, sample_rate: int = K.SAMPLE_RATE) -> float:
        return self.total_s / max(self.samples / sample_rate, 1e-9)


class AvatarStream:
    """cond rows in, :class:`StreamChunk` s out (see the module docstring)."""

    def __init__(self, synth: Any, *, schedule: str, steps: int, seed: int, total: int | None,
                 chunk: int = DEFAULT_CHUNK, lookahead: int | None = None, overlap: int | None = None,
                 vocoder_context: int | None = None) -> None:
        self.synth, self.schedule = synth, schedule
        self.model = synth.model
        self.cfg = self.model.config
        self.sampler = make_sampler(self.model, schedule, steps=steps, seed=seed, total=total, chunk=chunk,
                                    lookahead=lookahead, overlap=overlap, temperature=synth.temperature)
        self.vocoder = StreamingVocoder(synth.vocoder, context=vocoder_context, device=synth.device)
        self.hop = self.vocoder.hop
        self.frames_out = 0
        self.latents = np.zeros((0, self.cfg.head_dim), np.float32)  # not yet decoded to poses
        self.pose_done = 0
        self.t0 = time.perf_counter()
        self.stats = StreamStats(schedule=schedule)

    def _pose_window(self) -> int:
        vae = self.synth.head_vae
        return max(1, int(vae.config.encode_chunk)) if vae is not None else 0

    def _poses(self, final: bool) -> tuple[np.ndarray | None, int]:
        vae = self.synth.head_vae
        if vae is None or len(self.latents) == 0:
            return None, self.pose_done
        start = self.pose_done
        if self.schedule == "exact":  # whole decoder windows, as decode_pose cuts them offline
            win = self._pose_window()
            n = len(self.latents) if final else len(self.latents) // win * win
        else:
            n = len(self.latents)
        if n == 0:
            return None, start
        pose = np.asarray(vae.decode_pose(self.latents[:n]), np.float32)  # (n, 7)
        self.latents = self.latents[n:]
        self.pose_done += n
        return pose, start

    def _emit(self, x1: torch.Tensor, final: bool) -> StreamChunk | None:
        cfg, norm = self.cfg, self.model.normalizer
        x1 = x1.float()
        face, head, mel = (norm.denormalize(k, v).numpy() for k, v in
                           zip(("face", "head", "mel"), x1.split([cfg.face_dim, cfg.head_dim, cfg.mel_dim], dim=-1)))
        start = self.frames_out
        self.frames_out += len(mel)
        wav_start = self.vocoder.done * self.hop
        wav = self.vocoder.push(mel, final=final) if len(mel) or final else np.zeros(0, np.float32)
        self.latents = np.concatenate([self.latents, head.astype(np.float32)])
        pose, pose_start = self._poses(final)
        if len(mel) == 0 and len(wav) == 0 and pose is None:
            return None
        elapsed = time.perf_counter() - self.t0
        st = self.stats
        if len(wav) and st.first_audio_s is None:
            st.first_audio_s = elapsed
        if len(mel) and st.first_motion_s is None:
            st.first_motion_s = elapsed
        st.frames, st.samples, st.chunks, st.total_s = self.frames_out, st.samples + len(wav), st.chunks + 1, elapsed
        return StreamChunk(start, face.astype(np.float32), head.astype(np.float32), mel.astype(np.float32),
                           wav.astype(np.float32), wav_start, pose, pose_start, elapsed, self.sampler.available)

    def push(self, cond_rows: torch.Tensor | np.ndarray) -> StreamChunk | None:
        return self._emit(self.sampler.push(torch.as_tensor(cond_rows, dtype=torch.float32)), final=False)

    def finish(self) -> StreamChunk | None:
        return self._emit(self.sampler.finish(), final=True)


def stream_cond(stream: AvatarStream, cond: torch.Tensor, chunk: int) -> Iterator[StreamChunk]:
    """Feed a known cond (T, C) so that about ``chunk`` new frames become final per push."""
    T = cond.shape[0]
    first = min(T, chunk + int(getattr(stream.sampler, "lookahead", 0)))
    pos = 0
    for size in [first] + [chunk] * (-(-(T - first) // chunk) if T > first else 0):
        piece = cond[pos : pos + size]
        pos += len(piece)
        out = stream.push(piece)
        if out is not None:
            yield out
    out = stream.finish()
    if out is not None:
        yield out


# ---------------------------------------------------------------------------------------------
# Writing a stream as it comes
# ---------------------------------------------------------------------------------------------
def write_stream(synth: Any, chunks: Iterator[StreamChunk], out_dir: Any, *, meta: dict[str, Any],
                 force: bool = False, on_chunk: Any = None) -> tuple[Any, StreamStats]:
    """Append each chunk's audio to ``speech.wav`` as it arrives (inside the output's staging
    folder, committed at the end by :class:`avflow_cli.output.OutputFolder`: a killed stream
    leaves nothing half-written), then write ``motion.npz`` and ``meta.json``.
    ``on_chunk(chunk)`` sees every chunk (progress)."""
    from pathlib import Path

    from avflow_cli import __version__
    from avflow_cli.output import META_NAME, MOTION_NAME, OutputFolder

    out_dir = Path(out_dir)
    parts: dict[str, list[np.ndarray]] = {"face": [], "head_latent": [], "mel": [], "head_pose": []}
    with OutputFolder(out_dir, kind=K.SYNTH_OUTPUT_KIND, force=force, protect=getattr(synth, "reads", [])) as folder:
        with folder.audio_stream(synth.vocoder.sample_rate) as speech:
            for chunk in chunks:
                speech.append(chunk.wav)
                for key in ("face", "head_latent", "mel"):
                    parts[key].append(getattr(chunk, key))
                if chunk.head_pose is not None:
                    parts["head_pose"].append(chunk.head_pose)
                if on_chunk is not None:
                    on_chunk(chunk)
        stats: StreamStats = synth.last_stream
        motion = {k: np.concatenate(v) for k, v in parts.items() if v}
        motion["fps"] = np.float64(K.FPS)
        folder.write_npz(MOTION_NAME, **motion)
        meta = {**meta, "fps": K.FPS, "sample_rate": synth.vocoder.sample_rate, "frames": stats.frames,
                "seconds": stats.samples / synth.vocoder.sample_rate, "components": synth.components,
                "stream": {"schedule": stats.schedule, "time_to_first_audio_s": stats.first_audio_s,
                           "time_to_first_motion_s": stats.first_motion_s, "total_s": stats.total_s,
                           "real_time_factor": stats.real_time_factor(synth.vocoder.sample_rate), "chunks": stats.chunks,
                           **stats.extra},
                "preview": "none (streamed)", "avflow_version": __version__}
        folder.write_json(META_NAME, meta)
    return out_dir, stats
