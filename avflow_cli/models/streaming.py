"""Streaming AV-Flow: frames become output while later frames are still being generated.

Two schedules over the same windowed network (docs/ARCHITECTURE.md §2), both driven by ``push(cond rows)``
and ``finish()``; both return normalised x1 rows [face | head latent | mel] in order.

**exact** (:class:`ExactSampler`) — output equal to one offline pass (``inference.generate``).
One velocity evaluation reads a finite neighbourhood: each windowed-attention layer sees
``window_left`` past and ``window_right`` future frames, everything else (in/out projections,
MLPs, AdaLN, the highway fusion ``W_l [x_a; x_v]``) is per frame, and the two stacks run in
lockstep, so after ``depth`` blocks frame t depends on inputs in
``[t − depth·window_left, t + depth·window_right]`` (``cascade``: the visual stack reads the audio
stack's output, so twice that). Euler step k+1 reads the whole sequence of step k, so the
final frame t depends on noise and cond up to ``t + steps·depth·window_right``
(:func:`exact_lookahead`). The sampler keeps every step's state x_k and advances step k+1 over
exactly the frames whose neighbourhood in x_k is final; each advance evaluates the network on a
window with ``depth·window_left`` frames of past context, started on a multiple of the attention
block with RoPE positions of the whole sequence (``AVFlow.forward(pos_offset=…)``), so every
kept frame is computed from the same numbers as offline. The noise is the same
``randn(1, T, X)`` offline draws, so T must be known (text in; a finished recording).

**low-latency** (:class:`LowLatencySampler`) — chunks of ``chunk`` frames, each sampled on its own
window: ``overlap`` frames of already-emitted past, the chunk, and ``lookahead`` frames of future
cond. At every Euler step k the past frames take the state x_k they had at that step when they
were generated (kept for the last ``overlap`` frames: steps × overlap × X numbers), so the new
chunk sees its past as an offline pass would, and continues it with no seam (putting them back on
the straight path through their emitted values instead drifted: MCD +0.03 dB, docs/guidance.md);
the look-ahead frames are computed and dropped (the next chunk redoes them with more
context). Latency is ``chunk + lookahead`` input frames plus compute; with a look-ahead of
:func:`exact_lookahead` frames the output is offline's to float precision, with less it differs
slightly (benchmarks/stream_quality.py measures MCD, lip F1 and WER deltas: docs/guidance.md).
The noise may come from :class:`BlockNoise` when the length is open-ended (live input).

:class:`StreamingVocoder` turns mel rows into audio as they arrive: each piece is vocoded with
``context`` mel frames on both sides (the generator's receptive field plus a margin) and cut, so
the joined audio equals one pass to float precision with no seams.

Letters: T frames, X = F + 8 + 80, C cond width.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from avflow_cli.errors import AvflowError
from avflow_cli.models.config import check_temperature

SCHEDULES = ("exact", "low-latency")
NOISE_BLOCK = 1024  # frames per independently seeded block of BlockNoise


# ---------------------------------------------------------------------------------------------
# Receptive field
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ReceptiveField:
    """Frames of past (``left``) and future (``right``) one velocity evaluation reads."""

    left: int
    right: int


def receptive_field(cfg: Any) -> ReceptiveField:
    """One network pass: depth × window per stack (the highway fusion mixes stacks per frame, so it
    adds nothing); ``cascade`` chains the two stacks, doubling it."""
    stacks = 2 if cfg.fusion == "cascade" else 1
    return ReceptiveField(stacks * cfg.depth * cfg.window_left, stacks * cfg.depth * cfg.window_right)


def exact_lookahead(cfg: Any, steps: int) -> int:
    """Future input frames the exact schedule needs before frame t is final: steps·(depth·window_right)."""
    return int(steps) * receptive_field(cfg).right


# ---------------------------------------------------------------------------------------------
# Noise
# ---------------------------------------------------------------------------------------------
class FullNoise:
    """The offline draw ``randn(1, T, X)`` (same generator, seed and call as ``generate``)."""

    def __init__(self, total: int, x_dim: int, seed: int, temperature: float = 1.0) -> None:
        gen = torch.Generator(device="cpu").manual_seed(int(seed))
        self.x0 = torch.randn(1, total, x_dim, generator=gen) * temperature  # (1, T, X)
        self.total = total

    def __call__(self, a: int, b: int) -> torch.Tensor:
        if b > self.total:
            raise AvflowError(f"stream longer than announced: frame {b} > {self.total}")
        return self.x0[:, a:b]  # (1, b−a, X)


class BlockNoise:
    """Open-ended deterministic noise: block n of ``NOISE_BLOCK`` frames from its own seeded generator,
    so any frame's noise is the same however the stream is cut."""

    def __init__(self, x_dim: int, seed: int, temperature: float = 1.0) -> None:
        self.x_dim, self.seed, self.temperature = x_dim, int(seed), temperature
        self._cache: dict[int, torch.Tensor] = {}

    def _block(self, n: int) -> torch.Tensor:
        if n not in self._cache:
            if len(self._cache) > 4:  # live streams only move forward
                self._cache.pop(min(self._cache))
            gen = torch.Generator(device="cpu").manual_seed(self.seed * 1_000_003 + n)
            self._cache[n] = torch.randn(1, NOISE_BLOCK, self.x_dim, generator=gen) * self.temperature
        return self._cache[n]

    def __call__(self, a: int, b: int) -> torch.Tensor:
        parts = []
        pos = a
        while pos < b:
            n, off = divmod(pos, NOISE_BLOCK)
            take = min(b - pos, NOISE_BLOCK - off)
            parts.append(self._block(n)[:, off : off + take])
            pos += take
        return torch.cat(parts, dim=1) if parts else torch.zeros(1, 0, self.x_dim)


Noise = Callable[[int, int], torch.Tensor]


# ---------------------------------------------------------------------------------------------
# Samplers
# ---------------------------------------------------------------------------------------------
class _Sampler:
    """Shared state: the network, its Euler grid, the cond received so far (kept from ``cond_base``)."""

    def __init__(self, model: torch.nn.Module, steps: int, noise: Noise) -> None:
        if steps < 1:
            raise AvflowError(f"steps must be at least 1, got {steps}")
        self.model, self.steps, self.noise = model, int(steps), noise
        self.cfg = model.config
        self.device = next(model.parameters()).device
        self.ts = torch.linspace(0, 1, self.steps + 1)  # (n+1,) the grid euler_sample uses
        self.cond = torch.zeros(1, 0, self.cfg.cond_dim)  # (1, A − cond_base, C)
        self.cond_base = 0
        self.available = 0  # A: cond frames received
        self.ended = False
        self.emitted = 0

    def _take_cond(self, rows: torch.Tensor) -> None:
        rows = torch.as_tensor(rows, dtype=torch.float32)
        if rows.ndim == 2:
            rows = rows[None]
        if rows.shape[-1] != self.cfg.cond_dim:
            raise AvflowError(f"cond rows must be (n, {self.cfg.cond_dim}), got {tuple(rows.shape)}")
        if self.ended:
            raise AvflowError("stream already finished")
        self.cond = torch.cat([self.cond, rows], dim=1)
        self.available += rows.shape[1]

    def revise_cond(self, start: int, rows: torch.Tensor | np.ndarray) -> None:
        """Replace received cond rows [start, start + n) (live: look-ahead rows that were a guess when
        pushed); rows the sampler no longer keeps (before ``cond_base``) are skipped."""
        rows = torch.as_tensor(rows, dtype=torch.float32).reshape(-1, self.cfg.cond_dim)
        if start + len(rows) > self.available:
            raise AvflowError(f"cannot revise cond frames up to {start + len(rows)}: only {self.available} received")
        skip = max(0, self.cond_base - start)
        if skip < len(rows):
            a = start + skip - self.cond_base
            self.cond[0, a : a + len(rows) - skip] = rows[skip:]

    def _cond(self, a: int, b: int) -> torch.Tensor:
        return self.cond[:, a - self.cond_base : b - self.cond_base]

    def _velocity(self, x: torch.Tensor, step: int, cond: torch.Tensor, offset: int) -> torch.Tensor:
        t = self.ts[step].expand(1).to(self.device)
        with torch.inference_mode():
            return self.model(x.to(self.device), t, cond.to(self.device), pos_offset=offset).to("cpu")


class ExactSampler(_Sampler):
    """Frames equal to one offline pass, each as soon as its receptive field is known (module docstring)."""

    def __init__(self, model: torch.nn.Module, steps: int, noise: Noise, total: int) -> None:
        super().__init__(model, steps, noise)
        self.total = int(total)
        self.rf = receptive_field(self.cfg)
        self.block = max(1, int(self.cfg.attn_block))
        # level k: x_k for frames [base[k], final[k]); level 0 is the noise, read on demand
        self.levels: list[torch.Tensor] = [torch.zeros(1, 0, self.cfg.x_dim) for _ in range(self.steps + 1)]
        self.base = [0] * (self.steps + 1)
        self.final = [0] * (self.steps + 1)

    @property
    def lookahead(self) -> int:
        return self.steps * self.rf.right

    def push(self, cond_rows: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Add normalised cond rows (n, C); returns the x1 rows (m, X) that became final."""
        self._take_cond(torch.as_tensor(cond_rows))
        if self.available > self.total:
            raise AvflowError(f"exact stream: more cond frames ({self.available}) than announced ({self.total})")
        if self.available == self.total:
            self.ended = True
        return self._advance()

    def finish(self) -> torch.Tensor:
        """Everything left (the cond must be complete: the exact schedule knows T from the start)."""
        if self.available != self.total:
            raise AvflowError(f"exact stream ended after {self.available} of {self.total} frames")
        self.ended = True
        return self._advance()

    def _x(self, k: int, a: int, b: int) -> torch.Tensor:
        if k == 0:
            return self.noise(a, b)
        return self.levels[k][:, a - self.base[k] : b - self.base[k]]

    def _advance(self) -> torch.Tensor:
        n, rf = self.steps, self.rf
        self.final[0] = self.available
        for k in range(n):  # x_{k+1} from x_k
            target = self.final[k] if self.ended else max(self.final[k + 1], self.final[k] - rf.right)
            done = self.final[k + 1]
            if target <= done:
                continue
            ws = max(0, done - rf.left) // self.block * self.block  # block-aligned, as offline's blocks
            we = min(self.final[k], target + rf.right) if not self.ended else self.final[k]
            x = self._x(k, ws, we)  # (1, we−ws, X)
            v = self._velocity(x, k, self._cond(ws, we), ws)  # (1, we−ws, X)
            dt = self.ts[k + 1] - self.ts[k]
            new = x[:, done - ws : target - ws] + dt * v[:, done - ws : target - ws].to(x.dtype)
            self.levels[k + 1] = torch.cat([self.levels[k + 1], new], dim=1)
            self.final[k + 1] = target
        out = self.levels[n][:, self.emitted - self.base[n] :]
        self.emitted = self.final[n]
        self._trim()
        return out[0]  # (m, X)

    def _trim(self) -> None:
        """Drop state no later window reads (bounded memory on long streams)."""
        for k in range(1, self.steps + 1):
            keep_from = self.emitted if k == self.steps else max(0, self.final[k + 1] - self.rf.left) // self.block * self.block
            cut = keep_from - self.base[k]
            if cut > 0:
                self.levels[k] = self.levels[k][:, cut:]
                self.base[k] = keep_from
        keep = max(0, self.final[self.steps] - self.rf.left) // self.block * self.block  # the lowest window start
        if keep > self.cond_base:
            self.cond = self.cond[:, keep - self.cond_base :]
            self.cond_base = keep


class LowLatencySampler(_Sampler):
    """Chunks with past overlap and a fixed look-ahead (module docstring); any length, even open-ended."""

    def __init__(self, model: torch.nn.Module, steps: int, noise: Noise, *, chunk: int, lookahead: int,
                 overlap: int | None = None) -> None:
        super().__init__(model, steps, noise)
        if chunk < 1 or lookahead < 0:
            raise AvflowError(f"low-latency stream needs chunk ≥ 1 and lookahead ≥ 0 (got {chunk}, {lookahead})")
        self.chunk, self.lookahead = int(chunk), int(lookahead)
        self.overlap = receptive_field(self.cfg).left if overlap is None else int(overlap)
        # per-step states x_k of the emitted frames [emitted − len, emitted): (steps, 1, len, X)
        self.history = torch.zeros(self.steps, 1, 0, self.cfg.x_dim)

    def push(self, cond_rows: torch.Tensor | np.ndarray) -> torch.Tensor:
        self._take_cond(torch.as_tensor(cond_rows))
        outs = []
        while self.available >= self.emitted + self.chunk + self.lookahead:
            outs.append(self._chunk(self.emitted + self.chunk))
        return torch.cat(outs, dim=1)[0] if outs else torch.zeros(0, self.cfg.x_dim)

    def finish(self) -> torch.Tensor:
        self.ended = True
        outs = []
        while self.emitted < self.available:
            outs.append(self._chunk(min(self.available, self.emitted + self.chunk)))
        return torch.cat(outs, dim=1)[0] if outs else torch.zeros(0, self.cfg.x_dim)

    def _chunk(self, end: int) -> torch.Tensor:
        s = self.emitted
        ws = max(0, s - self.overlap)
        we = min(self.available, end + self.lookahead)
        x0 = self.noise(ws, we)  # (1, W, X)
        cond = self._cond(ws, we)
        n_past = s - ws
        past = self.history[:, :, self.history.shape[2] - n_past :] if n_past else None  # (steps, 1, s−ws, X)
        x = x0.clone()
        states = []  # the new frames' state at each step, (1, end−s, X) each
        for k in range(self.steps):
            if past is not None:  # emitted frames take the state they had at this step
                x[:, :n_past] = past[k]
            states.append(x[:, n_past : end - ws].clone())
            v = self._velocity(x, k, cond, ws)
            x = x + (self.ts[k + 1] - self.ts[k]) * v.to(x.dtype)
        out = x[:, n_past : end - ws]  # (1, end−s, X)
        self.history = torch.cat([self.history, torch.stack(states)], dim=2)[:, :, -max(1, self.overlap) :]
        self.emitted = end
        keep = max(0, self.emitted - self.overlap)
        if keep > self.cond_base:
            self.cond = self.cond[:, keep - self.cond_base :]
            self.cond_base = keep
        return out


def make_sampler(model: torch.nn.Module, schedule: str, *, steps: int, seed: int, total: int | None,
                 chunk: int, lookahead: int | None = None, overlap: int | None = None,
                 temperature: float | None = None) -> ExactSampler | LowLatencySampler:
    """The sampler of ``schedule``; ``total`` (frames) known → the offline noise, else block noise.
    ``temperature`` scales the noise (default: the config's, as offline)."""
    cfg = model.config
    temperature = cfg.temperature if temperature is None else check_temperature(temperature)
    if schedule not in SCHEDULES:
        raise AvflowError(f"unknown stream schedule {schedule!r}; choose {', '.join(SCHEDULES)}")
    noise: Noise = FullNoise(total, cfg.x_dim, seed, temperature) if total else BlockNoise(cfg.x_dim, seed, temperature)
    if schedule == "exact":
        if not total:
            raise AvflowError("the exact schedule needs the length in advance (its noise is the offline draw)")
        return ExactSampler(model, steps, noise, total)
    la = receptive_field(cfg).right if lookahead is None else lookahead
    return LowLatencySampler(model, steps, noise, chunk=chunk, lookahead=la, overlap=overlap)


# ---------------------------------------------------------------------------------------------
# Vocoder
# ---------------------------------------------------------------------------------------------
class StreamingVocoder:
    """Mel rows in, audio out as soon as each piece has ``context`` frames of mel after it.

    ``context`` (the right context) is latency; the left context is free, so each piece is vocoded
    with the vocoder's whole exact context of past mel (``context_frames``) before it: only the
    missing future changes the audio from one-pass vocoding."""

    def __init__(self, vocoder: Any, context: int | None = None, device: str | torch.device = "cpu",
                 min_frames: int = 1) -> None:
        self.vocoder = vocoder
        self.hop = int(getattr(vocoder, "hop", 256))
        self.context = int(getattr(vocoder, "context_frames", 16) if context is None else context)
        self.left = max(self.context, int(getattr(vocoder, "context_frames", self.context)))  # past mel: no latency
        self.device = torch.device(device)
        self.min_frames = max(1, int(min_frames))
        self.mel = np.zeros((0, 0), np.float32)  # (frames since mel_base, 80)
        self.mel_base = 0
        self.total = 0  # mel frames received
        self.done = 0  # mel frames whose audio was returned

    def push(self, mel_rows: np.ndarray, final: bool = False) -> np.ndarray:
        """Add natural-log mel rows (n, 80); returns the audio (m·hop,) now final."""
        mel_rows = np.asarray(mel_rows, np.float32)
        self.mel = mel_rows.copy() if self.mel.size == 0 else np.concatenate([self.mel, mel_rows])
        self.total += len(mel_rows)
        end = self.total if final else self.total - self.context
        if end - self.done < (1 if final else self.min_frames):
            return np.zeros(0, np.float32)
        lo = max(0, self.done - self.left)
        hi = min(self.total, end + self.context)
        seg = torch.as_tensor(self.mel[lo - self.mel_base : hi - self.mel_base], device=self.device)[None]  # (1, n, 80)
        with torch.inference_mode():
            wav = self.vocoder(seg)[0].float().cpu().numpy()  # (n·hop,)
        out = wav[(self.done - lo) * self.hop : (end - lo) * self.hop]
        self.done = end
        keep = max(0, self.done - self.left)
        if keep > self.mel_base:
            self.mel = self.mel[keep - self.mel_base :]
            self.mel_base = keep
        return out

    def finish(self) -> np.ndarray:
        return self.push(np.zeros((0, self.mel.shape[1] if self.mel.size else 80), np.float32), final=True)
