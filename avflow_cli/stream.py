"""Streaming output and the live listening loop behind ``Synthesizer.stream`` / ``Synthesizer.listen``.

:class:`AvatarStream` turns normalised cond rows into :class:`StreamChunk` s: the sampler of
``models/streaming.py`` (exact or low-latency schedule) gives x1 rows, which are denormalised and
split into face / head latent / mel; mel goes through :class:`~avflow_cli.models.streaming.StreamingVocoder`;
head latents are decoded to poses by the head VAE — in the exact schedule per whole decoder
window (the VAE's attention spans ``encode_chunk`` frames, so poses arrive per window, equal to
offline), in the low-latency schedule per chunk.

:class:`ListenSession` is the always-on loop: participant audio chunks (and optional video frames
or feature rows) in, avatar chunks out. Participant tokens come from the model's extractor run
on a sliding window of recent audio every ``token_hop_s``, trusted up to ``token_lag_s`` before
the newest sample (recognisers need a little right context); with pocketsphinx a word that the
window's end cuts is not committed until it has ended (a cut word is often misrecognised and
mistimed to the window's start). Video frames go through the
landmark tracker. The avatar's own tokens are silence (it listens) unless :meth:`ListenSession.say`
queued a line. ``latency_s`` is the bound, measured in input time, between a participant event
and the chunk that first reflects it.

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
TOKEN_WINDOW_S = 4.0  # recent participant audio the recogniser re-reads
TOKEN_HOP_S = 0.4  # how often it does
TOKEN_LAG_S = 0.2  # tokens closer than this to the newest sample wait for the next hop
MAX_WORD_S = 0.6  # pocketsphinx: a word is committed once it has ended (words rarely last longer)


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
# The live loop
# ---------------------------------------------------------------------------------------------
class ListenSession:
    """Always-on avatar: push participant audio (and frames) as it arrives, get avatar chunks back."""

    def __init__(self, synth: Any, *, sample_rate: int, steps: int | None = None, seed: int = 0,
                 chunk: int = DEFAULT_CHUNK, lookahead: int | None = None, video_fps: float = K.FACE_RATE,
                 token_extractor: str = "auto", token_window_s: float = TOKEN_WINDOW_S,
                 token_hop_s: float = TOKEN_HOP_S, token_lag_s: float = TOKEN_LAG_S) -> None:
        from avflow_cli.participant.audio import MIN_SAMPLE_RATE
        from avflow_cli.participant.tokens import choose_extractor

        self.synth, self.model = synth, synth.model
        self.cfg = self.model.config
        if sample_rate < MIN_SAMPLE_RATE:
            raise AvflowError(f"live participant audio at {sample_rate} Hz; at least {MIN_SAMPLE_RATE} Hz is needed")
        self.sr = int(sample_rate)
        self.notes: list[str] = []
        if not (self.cfg.participant_tokens or self.cfg.participant_visual_dim):
            self.notes.append("this model was trained without participant guidance: it will not react to the user")
        self.extractor = None
        if self.cfg.participant_tokens:
            self.extractor, note = choose_extractor(getattr(self.cfg, "token_source", ""), token_extractor)
            self.notes.append(note)
        steps = self.cfg.steps if steps is None else int(steps)
        self.stream = AvatarStream(synth, schedule="low-latency", steps=steps, seed=seed, total=None, chunk=chunk,
                                   lookahead=lookahead)
        self.chunk = chunk
        self.window_s, self.hop_s, self.lag_s = token_window_s, token_hop_s, token_lag_s
        self.audio = np.zeros(0, np.float32)  # the last token_window_s of participant audio
        self.audio_base = 0  # sample index of audio[0]
        self.audio_total = 0
        self.last_decode = -1e9
        self.p_tok: dict[int, np.ndarray] = {}  # model frame → participant token row
        self.tok_ready = 0  # frames [0, tok_ready) of participant tokens are final
        self.video_fps = float(video_fps)
        self.tracker: Any = None
        self.vis: list[np.ndarray] = []  # participant features at video_fps
        self.vis_base = 0
        self.own: list[np.ndarray] = []  # queued avatar token rows (say)
        self.cond_done = 0  # cond frames pushed to the sampler
        self.ended = False

    # --- inputs -----------------------------------------------------------------------------
    @property
    def latency_s(self) -> float:
        """Input-time bound from a participant event to the first chunk that reflects it."""
        tok = 0.0
        if self.extractor:  # a hop, the lag, and (pocketsphinx) the rest of a word still being spoken
            tok = self.hop_s + self.lag_s + (MAX_WORD_S if self.extractor == "pocketsphinx" else 0.0)
        model = (self.chunk + self.stream.sampler.lookahead) / K.FPS
        return tok + model + 1.0 / K.FPS

    def say(self, text: str, *, seed: int = 0) -> int:
        """Queue a line for the avatar to speak from the next frame on; returns its frames."""
        rows = self.synth.text_to_tokens(text, seed=seed)
        self.own.extend(list(rows))
        return len(rows)

    def _decode_tokens(self, final: bool) -> None:
        from avflow_cli.participant.tokens import extract_tokens, silence_tokens

        now = self.audio_total / self.sr
        if not final and now - self.last_decode < self.hop_s:
            return
        self.last_decode = now
        t0 = self.audio_base / self.sr
        until = int(np.floor((now if final else max(0.0, now - self.lag_s)) * K.FPS))
        if until <= self.tok_ready:
            return
        if len(self.audio) < int(0.03 * self.sr):
            logits = silence_tokens(2, getattr(self.cfg, "token_source", ""))
        elif self.extractor == "pocketsphinx":
            from avflow_cli.participant.tokens import pocketsphinx_tokens

            logits, words = pocketsphinx_tokens(self.audio, self.sr)  # (N_tok, 29) at 50 Hz from t0
            if not final:  # a word still being spoken (cut by the window's end) is not committed yet
                cut = [t0 + s for _, s, e in words if t0 + e > now - self.lag_s]
                if cut:
                    until = min(until, int(np.floor(min(cut) * K.FPS)))
        else:
            logits, _ = extract_tokens(self.audio, self.sr, self.extractor)  # (N_tok, 29) at 50 Hz from t0
        if until <= self.tok_ready:
            return
        tt = t0 + np.arange(len(logits)) / K.TOKEN_RATE  # (N_tok,) seconds
        frames = np.arange(self.tok_ready, until)
        times = frames / K.FPS
        rows = np.stack([np.interp(times, tt, logits[:, d]) for d in range(logits.shape[1])], axis=1)  # (n, 29)
        for f, row in zip(frames, rows.astype(np.float32)):
            self.p_tok[int(f)] = row
        self.tok_ready = until

    def _add_frames(self, frames: np.ndarray | None, features: np.ndarray | None) -> None:
        if features is not None:
            feats = np.atleast_2d(np.asarray(features, np.float32))
            if feats.shape[1] != self.cfg.participant_visual_dim:
                raise AvflowError(f"participant features have {feats.shape[1]} columns; this model reads "
                                  f"{self.cfg.participant_visual_dim}")
            self.vis.extend(list(feats))
        if frames is not None:
            from avflow_cli.participant.face_tracker import LandmarkTracker, predict_targets, targets_to_features

            if self.tracker is None:
                self.tracker = LandmarkTracker()
            for rgb in np.asarray(frames).reshape(-1, *np.asarray(frames).shape[-3:]):
                lm = self.tracker(rgb)
                if lm is None:  # no face: hold the last features (or none yet)
                    self.vis.append(self.vis[-1] if self.vis else None)  # type: ignore[arg-type]
                else:
                    self.vis.append(targets_to_features(predict_targets(lm[None]))[0])

    def _visual_rows(self, frames: np.ndarray) -> np.ndarray | None:
        if not self.cfg.participant_visual_dim or not self.vis:
            return None
        out = np.zeros((len(frames), self.cfg.participant_visual_dim), np.float32)
        mean = self.model.normalizer.streams["p_smirk"][0]
        for i, f in enumerate(frames):
            k = int(round(f / K.FPS * self.video_fps))
            row = self.vis[k] if k < len(self.vis) else None
            out[i] = mean if row is None else row  # unseen: the "no guidance" value after normalisation
        return out

    def _cond_until(self) -> int:
        if self.extractor:
            return self.tok_ready
        return int(np.floor(self.audio_total / self.sr * K.FPS))

    def _pump(self) -> list[StreamChunk]:
        from avflow_cli.models.inference import build_cond
        from avflow_cli.participant.tokens import silence_tokens

        until = self._cond_until()
        if until <= self.cond_done:
            return []
        frames = np.arange(self.cond_done, until)
        n = len(frames)
        own = [self.own.pop(0) for _ in range(min(n, len(self.own)))]
        src = getattr(self.cfg, "token_source", "")
        tokens = silence_tokens(n, src)
        if own:
            tokens[: len(own)] = np.stack(own)
        p_tok = np.stack([self.p_tok.pop(int(f)) for f in frames]) if self.extractor else None
        p_vis = self._visual_rows(frames)
        cond = build_cond(self.model, tokens, p_tok if self.cfg.participant_tokens else None,
                          p_vis if self.cfg.participant_visual_dim else None)[0]  # (n, C)
        self.cond_done = until
        out = self.stream.push(cond)
        return [out] if out is not None else []

    def push(self, audio: np.ndarray, frames: np.ndarray | None = None, features: np.ndarray | None = None
             ) -> list[StreamChunk]:
        """Participant audio (n,) at ``sample_rate`` (+ RGB frames (k, H, W, 3) at ``video_fps`` or
        feature rows (k, D)) that just arrived; returns the avatar chunks that became final."""
        if self.ended:
            raise AvflowError("listen session already closed")
        audio = np.asarray(audio, np.float32).reshape(-1)
        self.audio = np.concatenate([self.audio, audio])
        self.audio_total += len(audio)
        keep = int(self.window_s * self.sr)
        if len(self.audio) > keep:
            drop = len(self.audio) - keep
            self.audio, self.audio_base = self.audio[drop:], self.audio_base + drop
        self._add_frames(frames, features)
        if self.extractor:
            self._decode_tokens(final=False)
        return self._pump()

    def close(self) -> list[StreamChunk]:
        """End of input: everything left."""
        if self.extractor:
            self._decode_tokens(final=True)
        out = self._pump()
        self.ended = True
        last = self.stream.finish()
        return out + ([last] if last is not None else [])


# ---------------------------------------------------------------------------------------------
# Writing a stream as it comes
# ---------------------------------------------------------------------------------------------
def write_stream(synth: Any, chunks: Iterator[StreamChunk], out_dir: Any, *, meta: dict[str, Any],
                 force: bool = False, on_chunk: Any = None) -> tuple[Any, StreamStats]:
    """Append each chunk's audio to ``speech.wav`` as it arrives (inside the output's temporary
    folder, renamed into place at the end: a killed stream leaves nothing half-written), then
    write ``motion.npz`` and ``meta.json``. ``on_chunk(chunk)`` sees every chunk (progress)."""
    import json
    from pathlib import Path

    import soundfile as sf

    from avflow_cli import __version__
    from avflow_cli.fsutil import atomic_dir

    out_dir = Path(out_dir)
    parts: dict[str, list[np.ndarray]] = {"face": [], "head_latent": [], "mel": [], "head_pose": []}
    from avflow_cli.synth import OUTPUT_KIND as kind
    with atomic_dir(out_dir, kind=kind, force=force, protect=getattr(synth, "reads", [])) as tmp:
        with sf.SoundFile(str(tmp / "speech.wav"), "w", samplerate=synth.vocoder.sample_rate, channels=1,
                          subtype="PCM_16", format="WAV") as wav_file:
            for chunk in chunks:
                if len(chunk.wav):
                    wav_file.write(np.clip(chunk.wav, -1.0, 1.0))
                    wav_file.flush()
                for key in ("face", "head_latent", "mel"):
                    parts[key].append(getattr(chunk, key))
                if chunk.head_pose is not None:
                    parts["head_pose"].append(chunk.head_pose)
                if on_chunk is not None:
                    on_chunk(chunk)
        stats: StreamStats = synth.last_stream
        motion = {k: np.concatenate(v) for k, v in parts.items() if v}
        motion["fps"] = np.float64(K.FPS)
        np.savez_compressed(tmp / "motion.npz", **motion)
        meta = {**meta, "fps": K.FPS, "sample_rate": synth.vocoder.sample_rate, "frames": stats.frames,
                "seconds": stats.samples / synth.vocoder.sample_rate, "components": synth.components,
                "stream": {"schedule": stats.schedule, "time_to_first_audio_s": stats.first_audio_s,
                           "time_to_first_motion_s": stats.first_motion_s, "total_s": stats.total_s,
                           "real_time_factor": stats.real_time_factor(synth.vocoder.sample_rate), "chunks": stats.chunks,
                           **stats.extra},
                "preview": "none (streamed)", "avflow_version": __version__}
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2))
    return out_dir, stats
