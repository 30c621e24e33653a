"""``LiveSession``: the always-on avatar on one clock (docs/live.md has the latency budget).

Participant audio and camera frames are pushed as they arrive, ``say(text)`` at any moment, and
:meth:`LiveSession.step` advances the avatar to the session clock: the avatar's motion is final
``lead`` frames ahead of the clock (so a player never waits: vocoder context + one chunk + a compute
margin sized from how late chunks really finish), in chunks of ``chunk`` frames from the
low-latency sampler (models/streaming.py) with ``lookahead`` frames of future cond. It never
stops: with nothing to say, the avatar's own tokens are silence and it listens.

Cond rows the sampler reads ahead of what is known are guesses (participant unknown → blank tokens,
face → its last value; own speech → the queued lines) and are revised before every chunk until
their frames are final (``revise_cond``), so a line said now starts at the first frame that is not
final yet, and an interrupt silences every frame from there. Participant tokens are placed
``token_delay`` seconds late on the avatar's timeline: the frames final now run ahead of the clock,
so the words under them have not been heard yet; the delay is the smallest that lets the recogniser
settle a word before its (shifted) frame is final. The face is not delayed: each frame holds the
newest tracked features.

Audio comes out ``vocoder_context`` frames behind motion (the streaming vocoder needs mel after a
frame before its audio is final); both are on the same frame clock (sample = frame · hop).

Letters: frames at constants.FPS, C cond channels, F face codes.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from avflow_cli import constants as K
from avflow_cli.errors import AvflowError
from avflow_cli.live.participant import FACE_RATE, ParticipantFace, ParticipantTokens
from avflow_cli.live.recognizer import LAG_S, PARTIAL_HOP_S
from avflow_cli.live.stats import LiveStats, SmileOnsets

# The say latency is vocoder context + compute margin + 0 … chunk (docs/live.md, "Latency budget"): small
# chunks with 4 Euler steps keep it under 200 ms on 2 CPU cores; what the avatar says is as intelligible
# as at the model's 8 steps and chunk 16 (docs/live.md: WER of the live output per setting)
LIVE_CHUNK = 8  # frames (93 ms) per sampler chunk
LIVE_LOOKAHEAD = 8  # frames of future cond each chunk reads
LIVE_STEPS = 4  # Euler steps per chunk on a CPU (at most the model's own; a GPU takes the model's)
LIVE_VOCODER_CONTEXT = 4  # mel frames of right context before audio is final (docs/live.md: error vs context)
MARGIN_WINDOW = 48  # recent chunks whose lateness sets the compute margin
MARGIN_MIN_CHUNKS = 8  # chunks measured before the margin shrinks below one chunk
MARGIN_SAFETY = 1.3  # margin = this × the 95th percentile of recent lateness, + 1 frame
LINE_LEAD_IN = 1  # silent rows kept before a line's first sound (text-to-tokens pads 3–9)
TOKEN_SETTLE_S = LAG_S + PARTIAL_HOP_S  # audio → settled words, at most (the recorded-input driver waits for it)
MAX_CATCH_UP = 3  # chunks one step computes at most
FORGET_S = 30.0  # participant history older than this (session seconds) is dropped


@dataclass
class LiveOutput:
    """Avatar output that became final, on the session clock (see the contract in docs/live.md)."""

    start: int  # first motion frame index (at FPS)
    t: float  # session seconds of frame `start`
    wav: np.ndarray  # (m,) float32 at SAMPLE_RATE, samples [wav_start, wav_start + m)
    wav_start: int
    face: np.ndarray  # (n, F)
    head_pose: np.ndarray  # (n, 7) wxyz + translation (the neutral pose when the model has no head VAE)
    events: list[dict[str, Any]]
    emitted_at: float  # session seconds when it became final
    head_latent: np.ndarray | None = None  # (n, 8)
    mel: np.ndarray | None = None  # (n, 80)

    @property
    def frames(self) -> int:
        return len(self.face)


@dataclass
class _Line:
    """One ``say``: its token rows as text-to-tokens gives them, sentence by sentence."""

    id: str
    said_at: float
    sentences: list[str]  # not yet through text-to-tokens
    seed: int
    rows: list[np.ndarray] = field(default_factory=list)
    start: int | None = None  # first frame (set when the line is placed)
    cut: int | None = None  # interrupted: no rows from this frame on
    started: bool = False
    ended: bool = False
    heard: bool = False  # its first audio was emitted
    queued: bool = False  # placed after a line still speaking (its wait is that line, not latency)

    @property
    def length(self) -> int:
        return sum(len(r) for r in self.rows)

    @property
    def end(self) -> int:
        assert self.start is not None
        n = self.start + self.length
        return n if self.cut is None else min(n, self.cut)


NEUTRAL_POSE = np.array([1, 0, 0, 0, 0, 0, 0], np.float32)  # identity rotation, no translation


class LiveSession:
    """The always-on avatar (module docstring)."""

    def __init__(self, synth: Any, sample_rate: int = K.TOKEN_SAMPLE_RATE, video_fps: float | None = None, *,
                 seed: int = 0, lookahead: int | None = None, chunk: int | None = None,
                 clock: Callable[[], float] | None = None, lead: int | None = None,
                 vocoder_context: int | None = None, token_delay: float | None = None,
                 face_rate: float = FACE_RATE, steps: int | None = None, token_extractor: str = "auto",
                 overlap: int | None = None) -> None:
        from avflow_cli.participant.audio import MIN_SAMPLE_RATE
        from avflow_cli.participant.tokens import choose_extractor, silence_tokens
        from avflow_cli.stream import AvatarStream

        self.synth, self.model = synth, synth.model
        self.cfg = self.model.config
        if int(sample_rate) < MIN_SAMPLE_RATE:
            raise AvflowError(f"live participant audio at {sample_rate} Hz; at least {MIN_SAMPLE_RATE} Hz is needed")
        self.sample_rate = int(sample_rate)
        self.video_fps = None if video_fps is None else float(video_fps)
        self.chunk = LIVE_CHUNK if chunk is None else int(chunk)
        self.lookahead = LIVE_LOOKAHEAD if lookahead is None else int(lookahead)
        vctx = LIVE_VOCODER_CONTEXT if vocoder_context is None else int(vocoder_context)
        if self.chunk < 1 or self.lookahead < 0 or vctx < 0:
            raise AvflowError(f"live session needs chunk ≥ 1, lookahead ≥ 0 and vocoder context ≥ 0 "
                              f"(got {self.chunk}, {self.lookahead}, {vctx})")
        self.vocoder_context = vctx
        # motion final `lead` frames ahead of the clock = vocoder context + one chunk + the compute
        # margin: a chunk starts when the audio before it has `margin` frames left to play, so it must be
        # computed within them. The margin starts at one chunk (compute up to 1× real time never
        # underruns) and then follows how late chunks really finish (`_adapt_margin`); a given `lead` is fixed.
        self.fixed_lead = lead is not None
        self.margin = self.chunk if lead is None else int(lead) - vctx - self.chunk
        self._lateness: deque[float] = deque(maxlen=MARGIN_WINDOW)
        self._last_step_at = 0.0  # session time of the last step
        self._closing = False
        src = getattr(self.cfg, "token_source", "")
        self.own_blank = silence_tokens(1, src)[0]  # (29,)
        self.notes: list[str] = []
        if not (self.cfg.participant_tokens or self.cfg.participant_visual_dim):
            self.notes.append("this model was trained without participant guidance: it will not react to the user")
        self.tokens: ParticipantTokens | None = None
        if self.cfg.participant_tokens:
            extractor, note = choose_extractor(src, token_extractor)
            if extractor != "pocketsphinx":
                raise AvflowError(f"live listening recognises the participant with pocketsphinx (incremental); this "
                                  f"model reads {extractor} tokens, which have no incremental extractor here")
            self.notes.append(f"{note}; incremental, VAD-gated utterances")
            self.tokens = ParticipantTokens(self.sample_rate, src)
        if token_delay is None:  # the newest frame a chunk reads is heard (partial words) when the chunk runs
            token_delay = max(0.0, (max(self.lead, 0) + self.lookahead) / K.FPS + PARTIAL_HOP_S)
        self.token_delay = float(token_delay)
        self.face = ParticipantFace(self.cfg.participant_visual_dim, face_rate) if self.cfg.participant_visual_dim else None
        self.p_mean = self.model.normalizer.streams["p_smirk"][0] if self.cfg.participant_visual_dim else None
        if steps is None:  # a CPU needs fewer steps for the say latency; a GPU affords the model's own
            on_cpu = getattr(getattr(synth, "device", None), "type", "cpu") == "cpu"
            steps = min(self.cfg.steps, LIVE_STEPS) if on_cpu else self.cfg.steps
        self.steps = int(steps)
        if self.steps < 1:
            raise AvflowError(f"live session needs at least 1 Euler step per chunk (got {self.steps})")
        self.stream = AvatarStream(synth, schedule="low-latency", steps=self.steps, seed=seed, total=None,
                                   chunk=self.chunk, lookahead=self.lookahead, vocoder_context=vctx, overlap=overlap)
        self.sampler = self.stream.sampler
        self.hop = self.stream.hop
        self.seed = int(seed)
        self._clock = clock or time.monotonic
        self.t0 = self._clock()  # set again once warmed up: loading is not on the session's clock
        self.audio_queue: list[np.ndarray] = []
        self.max_catch_up = MAX_CATCH_UP  # recorded input (no clock to keep up with) may raise it
        self._lock = threading.RLock()  # step/close/say/interrupt: one at a time (push_* never take it)
        self.lines: list[_Line] = []
        self.n_said = 0
        self.events: list[dict[str, Any]] = []  # not yet attached to an output (carry "frame")
        self.samples_out = 0
        self.ended = False
        self.stats = LiveStats(chunk_s=self.chunk / K.FPS, lead_s=self.lead / K.FPS, lookahead_s=self.lookahead / K.FPS,
                               vocoder_context_s=vctx / K.FPS, token_delay_s=self.token_delay, steps=self.steps)
        self.avatar_smile = SmileOnsets()
        self.participant_smile = SmileOnsets()
        self._smile_decoder = self._open_smile_decoder()
        self._renderer: Any = None
        self._render_state: tuple[int, np.ndarray, np.ndarray] | None = None  # (frame, face, pose) of the last frame seen
        self._video_next = 0
        self._warm_up(overlap)
        self.t0 = self._clock()

    def _warm_up(self, overlap: int | None) -> None:
        """Load now what the first word, face or line would otherwise load mid-stream (a stall of
        0.3–1.5 s: the pronouncing dictionary, dlib's models, text-to-tokens and its first call), and
        run a throwaway stream through every window shape the first chunks meet (each new shape's
        first call costs oneDNN setup: 1.6 s over the first chunks, measured on 2 CPU cores)."""
        from avflow_cli.stream import AvatarStream

        probe = AvatarStream(self.synth, schedule="low-latency", steps=self.steps, seed=self.seed, total=None,
                             chunk=self.chunk, lookahead=self.lookahead, overlap=overlap,
                             vocoder_context=self.vocoder_context)
        probe.push(self._cond(0, probe.sampler.overlap + 2 * self.chunk + self.lookahead))
        if self.tokens is not None:
            from avflow_cli.audio.alignment_tokens import phone_spans

            phone_spans({"words": [("HELLO", 0.0, 0.4)]})
        if self.face is not None:
            self.face.warm_up()
        if self.synth.t2t_dir is not None:
            self.synth.load_t2t().synthesize("Hello.", seed=0)

    # --- the clock --------------------------------------------------------------------------
    @property
    def lead(self) -> int:
        """Frames the motion is final ahead of the clock (vocoder context + chunk + compute margin)."""
        return self.vocoder_context + self.chunk + self.margin

    def _adapt_margin(self, lateness: float) -> None:
        """Record how long after it was due a chunk finished (its compute, the wait for the step, a
        say's text-to-tokens before it) and size the margin to cover that with room to spare."""
        self._lateness.append(lateness)
        if self.fixed_lead or len(self._lateness) < MARGIN_MIN_CHUNKS:
            return
        need = float(np.percentile(np.asarray(self._lateness), 95)) * MARGIN_SAFETY
        self.margin = int(np.clip(np.ceil(need * K.FPS) + 1, 1, 3 * self.chunk))
        self.stats.lead_s = self.lead / K.FPS

    def now(self) -> float:
        """Session seconds on the clock."""
        return self._clock() - self.t0

    @property
    def busy(self) -> bool:
        """A line is queued or being spoken (its end not final yet)."""
        return any(not line.ended and line.cut is None for line in self.lines)

    @property
    def next_free_frame(self) -> int:
        """The first frame that is not final: a line said now starts here at the earliest."""
        return self.sampler.emitted

    # --- inputs -----------------------------------------------------------------------------
    def push_audio(self, pcm: np.ndarray, sample_rate: int | None = None) -> None:
        """Participant audio that just arrived: mono float32 in [-1, 1] or int16; queued (never blocks)."""
        if self.ended:
            raise AvflowError("live session already closed")
        x = np.asarray(pcm)
        if x.dtype == np.int16:
            x = x.astype(np.float32) / 32768.0
        x = np.asarray(x, np.float32).reshape(-1)
        if sample_rate is not None and int(sample_rate) != self.sample_rate:
            raise AvflowError(f"audio at {sample_rate} Hz pushed into a session opened at {self.sample_rate} Hz")
        if len(x):
            self.audio_queue.append(x)

    def push_frame(self, image: Any, t: float | None = None) -> None:
        """A camera frame (RGB uint8 (H, W, 3) or JPEG bytes) at session seconds ``t`` (default: its
        index / video_fps, else the clock); tracked later, at a bounded rate (never blocks)."""
        if self.ended:
            raise AvflowError("live session already closed")
        if self.face is None:
            return
        if t is None:
            t = self.face.frames_in / self.video_fps if self.video_fps else self.now()
        self.face.push(image, float(t))

    def push_features(self, rows: np.ndarray, t: float, rate: float) -> None:
        """Participant feature rows (k, D) computed elsewhere, starting at session seconds ``t``."""
        if self.face is not None:
            self.face.push_features(rows, t, rate)

    def say(self, text: str, *, seed: int | None = None) -> str:
        """Queue a line from the next free frame (after any line still speaking); returns its id.

        Its first sentence goes through text-to-tokens now (tens of ms), the rest when their frames
        come near, so a long text never stalls the output. Unsayable text: AvflowError, nothing queued.
        """
        from avflow_cli.text.sentences import split_sentences, text_problems

        if self.ended:
            raise AvflowError("live session already closed")
        said_at = self.now()
        problem = text_problems([text])[0]
        if problem is not None:
            raise AvflowError(problem)
        with self._lock:
            self.n_said += 1
            n = self.n_said
        line = _Line(id=f"say-{n}", said_at=said_at, sentences=split_sentences(text),
                     seed=self.seed + n * 1000 if seed is None else int(seed))
        t = time.perf_counter()
        self._synth_sentence(line)  # outside the lock: a step may run meanwhile
        with self._lock:
            self.stats.t2t_s.append(time.perf_counter() - t)
            self.lines.append(line)
            self._place_lines()
        return line.id

    def interrupt(self) -> None:
        """Stop the current and queued lines from the next free frame on (the avatar keeps listening)."""
        with self._lock:
            self._interrupt()

    def _interrupt(self) -> None:
        cut = self.next_free_frame
        keep = []
        for line in self.lines:
            if line.ended or (line.start is not None and line.end <= cut):
                keep.append(line)
                continue
            self.events.append({"type": "interrupted", "id": line.id, "frame": cut})
            if line.start is not None and line.start < cut:
                line.cut, line.sentences = cut, []
                keep.append(line)
        self.lines = keep

    # --- lines ------------------------------------------------------------------------------
    def _synth_sentence(self, line: _Line) -> None:
        sentence = line.sentences.pop(0)
        rows = np.asarray(self.synth.t2t.synthesize(sentence, seed=line.seed + len(line.rows)), np.float32)
        if not line.rows:  # the avatar is silent before a line: its first sound starts the line
            blank = int(np.argmax(self.own_blank))
            sounding = np.flatnonzero(rows.argmax(axis=1) != blank)
            if len(sounding):
                rows = rows[max(0, int(sounding[0]) - LINE_LEAD_IN):]
        line.rows.append(rows)

    def _place_lines(self) -> None:
        """Give queued lines their start frame once the line before them is complete."""
        prev_end = self.next_free_frame
        for line in self.lines:
            if line.start is None:
                line.start = max(prev_end, self.next_free_frame)
                line.queued = line.start > self.next_free_frame
            if line.sentences:
                return  # its end is not known yet: the next line waits
            prev_end = max(prev_end, line.end)

    def _prepare_lines(self, until: int) -> None:
        """Text-to-tokens for sentences whose frames start before ``until``."""
        for line in self.lines:
            while line.start is not None and line.sentences and line.start + line.length < until:
                t = time.perf_counter()
                self._synth_sentence(line)
                self.stats.t2t_s.append(time.perf_counter() - t)
            self._place_lines()

    def _own_rows(self, frames: np.ndarray) -> np.ndarray:
        out = np.repeat(self.own_blank[None], len(frames), axis=0).astype(np.float32)
        for line in self.lines:
            if line.start is None or not line.rows:
                continue
            rows = np.concatenate(line.rows)
            sel = (frames >= line.start) & (frames < line.end)
            out[sel] = rows[frames[sel] - line.start]
        return out

    # --- cond -------------------------------------------------------------------------------
    def _cond(self, a: int, b: int) -> torch.Tensor:
        """Normalised cond rows (b − a, C) from everything known now."""
        from avflow_cli.models.inference import build_cond

        frames = np.arange(a, b)
        times = frames / K.FPS
        tokens = self._own_rows(frames)
        p_tok = None
        if self.tokens is not None:
            p_tok, _ = self.tokens.rows(times - self.token_delay)  # unknown → blank, revised later
        p_vis = None
        if self.face is not None:
            p_vis = self.face.rows(times)
            if p_vis is not None:
                missing = np.isnan(p_vis).any(axis=1)
                p_vis[missing] = self.p_mean  # "no guidance" after normalisation
        return build_cond(self.model, tokens, p_tok, p_vis)[0]  # (b − a, C)

    # --- the loop ---------------------------------------------------------------------------
    def _ingest(self) -> None:
        if self.audio_queue:
            queued, self.audio_queue = self.audio_queue, []  # a push meanwhile lands in the new list
            audio = np.concatenate(queued)
            t, c = time.perf_counter(), time.thread_time()
            if self.tokens is not None:
                self.tokens.push(audio)
            self.stats.recognize_s += time.perf_counter() - t
            self.stats.cpu_s += time.thread_time() - c
            self.stats.audio_in_s += len(audio) / self.sample_rate
        if self.face is not None:
            before = len(self.face.times)
            if self.face.pending:
                t, c = time.perf_counter(), time.thread_time()
                self.face.track()
                self.stats.track_s += time.perf_counter() - t
                self.stats.cpu_s += time.thread_time() - c
            for k in range(before, len(self.face.times)):
                self.participant_smile.add(self.face.times[k], self.face.smiles[k])

    def step(self, now: float | None = None) -> list[LiveOutput]:
        """Advance the avatar so its motion is final ``lead`` frames past session time ``now``
        (default: the clock); returns the outputs that became final (may be empty)."""
        with self._lock:
            return self._step(now)

    def _step(self, now: float | None) -> list[LiveOutput]:
        if self.ended:
            raise AvflowError("live session already closed")
        now = self.now() if now is None else float(now)
        self._ingest()
        target = int(np.floor(now * K.FPS)) + self.lead
        outs = []
        # behind the clock (a machine slower than real time): at most MAX_CATCH_UP chunks per step, so the
        # input keeps being read and the output falls behind gradually (underruns) instead of never returning
        while self.sampler.emitted + self.chunk <= target and len(outs) < self.max_catch_up:
            due = (self.sampler.emitted + self.chunk - self.lead) / K.FPS  # when the clock first asked for it
            out = self._advance()
            if out is not None:
                outs.append(out)
            if due > self._last_step_at and not self._closing:  # due since the last step (not start-up, not the flush)
                self._adapt_margin(max(0.0, self.now() - due))
            target = int(np.floor(now * K.FPS)) + self.lead
        self._last_step_at = now
        self._account(now)
        return outs

    def _advance(self, final: bool = False) -> LiveOutput | None:
        s = self.sampler.emitted
        need = s + self.chunk + self.lookahead
        t, c = time.perf_counter(), time.process_time()
        self._prepare_lines(need)
        avail = self.sampler.available
        lo = max(self.sampler.cond_base, s - self.sampler.overlap, 0)
        if avail > lo:  # rows read ahead of what was known: revise with what is known now
            self.sampler.revise_cond(lo, self._cond(lo, avail))
        chunk = self.stream.push(self._cond(avail, need)) if need > avail else self.stream.push(
            torch.zeros(0, self.cfg.cond_dim))
        if final:
            last = self.stream.finish()
            chunk = _merge(chunk, last)
        self.stats.compute_s += time.perf_counter() - t
        self.stats.cpu_s += time.process_time() - c
        return self._output(chunk)

    def _output(self, chunk: Any) -> LiveOutput | None:
        if chunk is None:
            return None
        emitted_at = self.now()
        n = chunk.frames
        e = chunk.start + n
        pose = chunk.head_pose if chunk.head_pose is not None else np.repeat(NEUTRAL_POSE[None], n, axis=0)
        events = self._events(chunk.start, e, chunk.wav_start + len(chunk.wav), emitted_at)
        out = LiveOutput(start=chunk.start, t=chunk.start / K.FPS, wav=chunk.wav, wav_start=chunk.wav_start,
                         face=chunk.face, head_pose=pose.astype(np.float32), events=events, emitted_at=emitted_at,
                         head_latent=chunk.head_latent, mel=chunk.mel)
        self.samples_out = chunk.wav_start + len(chunk.wav)
        self.stats.frames += n
        self.stats.samples = self.samples_out
        self.stats.chunks += 1
        if self._smile_decoder is not None and n:
            from avflow_cli.render.demo_avatar import PARAM_INDEX

            smile = self._smile_decoder.params(chunk.face)[:, PARAM_INDEX["smile"]]
            for i, v in enumerate(smile):
                self.avatar_smile.add((chunk.start + i) / K.FPS, float(v))
        return out

    def _events(self, s: int, e: int, wav_end: int, emitted_at: float) -> list[dict[str, Any]]:
        """Events whose frame became final in [s, e); first-audio latencies of lines heard by ``wav_end``."""
        out = []
        for line in self.lines:
            if line.start is None:
                continue
            if not line.started and line.start < e and line.length:
                line.started = True
                out.append({"type": "say_start", "id": line.id, "frame": line.start})
            if not line.heard and line.start * self.hop < wav_end:
                line.heard = True
                self.stats.first_audio_latency.append(emitted_at - line.said_at)
                heard = line.start / K.FPS - line.said_at
                (self.stats.first_audio_heard_queued if line.queued else self.stats.first_audio_heard).append(heard)
            if line.started and not line.ended and not line.sentences and line.cut is None and line.end <= e:
                line.ended = True
                out.append({"type": "say_end", "id": line.id, "frame": line.end})
        keep = []
        for ev in self.events:
            (out if ev["frame"] < e else keep).append(ev)
        self.events = keep
        self.lines = [ln for ln in self.lines if not (ln.start is not None and (ln.ended or ln.cut is not None)
                                                     and ln.end < s)]
        for ev in out:
            ev["t"] = ev["frame"] / K.FPS
        return sorted(out, key=lambda ev: ev["frame"])

    def _account(self, now: float) -> None:
        st = self.stats
        audio_end = self.samples_out / K.SAMPLE_RATE
        behind = now - audio_end
        st.max_behind_s = max(st.max_behind_s, behind)
        late = behind > self.chunk / K.FPS
        if late and not st._late:
            st.underruns += 1
        st._late = late
        st.session_s = max(st.session_s, now)
        st.reaction_latency = SmileOnsets.latencies(self.participant_smile, self.avatar_smile)
        if now > FORGET_S:
            if self.tokens is not None:
                self.tokens.forget(now - FORGET_S)
            if self.face is not None:
                self.face.forget(now - FORGET_S)

    def close(self, now: float | None = None) -> list[LiveOutput]:
        """Flush: everything up to ``now`` (default: the clock) becomes final, audio included; the session ends."""
        with self._lock:
            return self._close(now)

    def _close(self, now: float | None) -> list[LiveOutput]:
        if self.ended:
            return []
        now = self.now() if now is None else float(now)
        self._closing = True
        if self.tokens is not None:
            for _ in range(2):  # queued audio, then the recogniser's open utterance
                self._ingest()
                self.tokens.finish()
        outs = self._step(now)
        end = int(np.floor(now * K.FPS))  # everything up to the clock, even when the output runs behind it
        while self.sampler.emitted + self.chunk + self.lookahead <= end:
            out = self._advance()
            if out is not None:
                outs.append(out)
        for line in self.lines:
            if line.start is not None and not line.ended and line.cut is None and line.end > self.sampler.emitted:
                self.events.append({"type": "interrupted", "id": line.id, "frame": self.sampler.emitted + self.lookahead})
        last = self._advance(final=True)
        if last is not None:
            if self.events:  # lines cut by the end of the session
                extra = [{**ev, "t": ev["frame"] / K.FPS} for ev in self.events]
                last.events.extend(extra)
                self.events = []
            outs.append(last)
        self.ended = True
        st = self.stats
        st.drift = self.samples_out / K.SAMPLE_RATE - st.frames / K.FPS
        self._account(now)
        return outs

    # --- the avatar's face --------------------------------------------------------------------
    def _open_smile_decoder(self) -> Any:
        """The demo avatar's decoder (face codes → named parameters) when the model draws it: smiles are measured."""
        path = getattr(self.synth, "face_decoder_path", None)
        if path is None or str(path).endswith(".npz") is False:
            return None
        from avflow_cli.render.demo_avatar import FaceDecoder

        decoder = FaceDecoder.load(path)
        return decoder if decoder.dim == self.cfg.face_dim else None

    def render(self, output: LiveOutput, size: int = 256, fps: float = 30.0) -> list[np.ndarray]:
        """RGB frames (size, size, 3) of the model's avatar for ``output``, at ``fps`` on the session
        clock: frame j shows time j / fps, interpolated between motion frames (across outputs too)."""
        from avflow_cli.render.video import open_frame_source

        if self._renderer is None:
            path = getattr(self.synth, "face_decoder_path", None)
            if path is None:
                raise AvflowError("this model carries no avatar to render (no face_decoder.npz or avatar/)")
            self._renderer = open_frame_source(path, size=size, device="cpu")
            self._render_fps = float(fps)
        n = output.frames
        if n == 0:
            return []
        face, pose = output.face, output.head_pose
        first = output.start
        if self._render_state is not None and self._render_state[0] == output.start - 1:
            _, f0, p0 = self._render_state
            face, pose, first = np.concatenate([f0[None], face]), np.concatenate([p0[None], pose]), output.start - 1
        last = output.start + n - 1
        js = np.arange(self._video_next, int(np.floor(last / K.FPS * self._render_fps + 1e-9)) + 1)
        pos = js / self._render_fps * K.FPS - first  # (k,) fractional index into face
        js, pos = js[pos >= 0], pos[pos >= 0]
        self._render_state = (last, output.face[-1], output.head_pose[-1])
        if len(js) == 0:
            return []
        self._video_next = int(js[-1]) + 1
        i0 = np.floor(pos).astype(int)
        i1 = np.minimum(i0 + 1, len(face) - 1)
        w = (pos - i0)[:, None]
        f = (1 - w) * face[i0] + w * face[i1]
        q = (1 - w) * pose[i0] + w * pose[i1]
        q[:, :4] /= np.linalg.norm(q[:, :4], axis=1, keepdims=True).clip(1e-8)
        t, c = time.perf_counter(), time.process_time()
        frames = list(self._renderer.frames(f.astype(np.float32), q.astype(np.float32)))
        self.stats.render_s += time.perf_counter() - t
        self.stats.render_cpu_s += time.process_time() - c
        self.stats.rendered += len(frames)
        return frames


def _merge(a: Any, b: Any) -> Any:
    """Two consecutive StreamChunks as one (close: the last pushed chunk and the flush)."""
    if a is None or b is None:
        return a if b is None else b
    from avflow_cli.stream import StreamChunk

    pose = None
    if a.head_pose is not None or b.head_pose is not None:
        pose = np.concatenate([p for p in (a.head_pose, b.head_pose) if p is not None])
    return StreamChunk(a.start, np.concatenate([a.face, b.face]), np.concatenate([a.head_latent, b.head_latent]),
                       np.concatenate([a.mel, b.mel]), np.concatenate([a.wav, b.wav]), a.wav_start, pose,
                       a.head_pose_start, b.elapsed, b.input_frames)
