"""Value checks shared by the CLI, the server and the library: one-line errors, one place each.

A leaf (docs/INTERFACES.md §8): imports only other leaves, so ``train/``, ``models/``, ``serve/``
and ``cli/`` all call it. Typer rejects what is not a number; these reject numbers no run can
use (a seed torch cannot take, zero or 10^20 Euler steps, a NaN learning rate, a pause of
10^7 s) and texts no synthesis should take, before any model is loaded or memory allocated.
"""

from __future__ import annotations

import math
from pathlib import Path

from avflow_cli.errors import AvflowError

MAX_SEED = 2**31 - 1  # the range every RNG avflow seeds accepts (torch, numpy, the server's limit)
MAX_STEPS = 100_000  # Euler steps: flow matching needs 8-32; far beyond this is a typo, not a setting
MAX_TEXT_CHARS = 1_000  # one utterance (all its sentences); the server's default request limit too
MAX_TIMELINE_SECONDS = 3_600.0  # one generated or rendered timeline: an hour, ~310 k frames at FPS
MAX_PAUSE_SECONDS = 60.0  # a dialogue's silence after one turn
MIN_FPS, MAX_FPS = 1.0, 1_000.0  # frame rates of motion and feature files avflow reads
TEMPERATURE_MAX = 2.0  # sampling noise scale beyond this is far outside what a flow was trained on
TOKEN_GAIN_MAX = 4.0  # a token gain beyond this drives AV-Flow's input far outside what it was trained on


def check_seed(seed: int, option: str = "--seed") -> int:
    if not 0 <= seed <= MAX_SEED:
        raise AvflowError(f"{option} must be between 0 and {MAX_SEED}, got {seed}")
    return seed


def check_steps(steps: int | None, option: str = "--steps") -> int | None:
    """``None`` (the model's own count) or 1 … MAX_STEPS."""
    if steps is not None and steps < 1:
        raise AvflowError(f"{option} must be at least 1, got {steps}")
    if steps is not None and steps > MAX_STEPS:
        raise AvflowError(f"{option} must be at most {MAX_STEPS} (flow matching needs 8-32), got {steps}")
    return steps


def check_finite(value: float | None, option: str, *, positive: bool = False) -> float | None:
    """``None`` or a finite number (strictly positive when ``positive``)."""
    if value is None:
        return None
    if not math.isfinite(value) or (positive and value <= 0):
        raise AvflowError(f"{option} must be a finite {'positive ' if positive else ''}number, got {value}")
    return value


def check_at_least(value: int | None, option: str, low: int = 1) -> int | None:
    """``None`` (the default) or an integer ≥ ``low`` (a count: steps, a batch size, sentences)."""
    if value is not None and value < low:
        raise AvflowError(f"{option} must be at least {low}, got {value}")
    return value


def check_int_range(value: int, option: str, low: int, high: int) -> int:
    if not low <= value <= high:
        raise AvflowError(f"{option} must be between {low} and {high}, got {value}")
    return value


def check_temperature(temperature: float, name: str = "--temperature") -> float:
    """``temperature`` as a float in [0, TEMPERATURE_MAX]; a one-line error naming ``name`` otherwise."""
    value = float(temperature)
    if not 0.0 <= value <= TEMPERATURE_MAX:  # also refuses NaN
        raise AvflowError(f"{name} must be in [0, {TEMPERATURE_MAX:g}], got {temperature}")
    return value


def check_token_gain(gain: float, name: str = "--token-gain") -> float:
    """``gain`` as a float in (0, TOKEN_GAIN_MAX]; a one-line error naming ``name`` otherwise."""
    value = float(gain)
    if not 0.0 < value <= TOKEN_GAIN_MAX:  # also refuses NaN
        raise AvflowError(f"{name} must be in (0, {TOKEN_GAIN_MAX:g}], got {gain}")
    return value


def check_lr(lr: float, option: str = "--lr") -> float:
    """A learning rate: finite and > 0 (NaN or inf trains NaN weights; ≤ 0 trains nothing)."""
    value = float(lr)
    if not (math.isfinite(value) and value > 0):
        raise AvflowError(f"{option} must be a finite positive number, got {lr}")
    return value


def check_text(text: str, what: str = "text", *, limit: int | None = MAX_TEXT_CHARS) -> str:
    """Text a synthesis may take: at most ``limit`` characters (None: any length) and valid
    Unicode (a lone surrogate, as a shell passes undecodable bytes, cannot be spoken or written
    to meta.json)."""
    if limit is not None and len(text) > limit:
        raise AvflowError(f"{what}: {len(text):,} characters; at most {limit:,} per utterance "
                          "(split it into shorter utterances)")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:
        raise AvflowError(f"{what}: not valid UTF-8 text (character {err.start + 1} is "
                          f"{text[err.start]!r}, a lone surrogate: undecodable bytes?)") from None
    return text


def check_seconds(seconds: float, what: str, *, limit: float = MAX_TIMELINE_SECONDS) -> float:
    """A length in seconds that is finite, ≥ 0 and at most ``limit`` (checked before allocating it)."""
    if not (math.isfinite(seconds) and 0 <= seconds <= limit):
        raise AvflowError(f"{what}: {seconds:g} s; must be a finite number of seconds in [0, {limit:g}]")
    return seconds


def check_frames(frames: int, fps: float, what: str, *, limit: float = MAX_TIMELINE_SECONDS) -> int:
    """``frames`` at ``fps`` (checked finite, in [MIN_FPS, MAX_FPS]) spanning at most ``limit`` seconds."""
    check_fps(fps, what)
    if frames / fps > limit:
        raise AvflowError(f"{what}: {frames:,} frames at {fps:g} fps = {frames / fps:,.0f} s; "
                          f"at most {limit:g} s per timeline")
    return frames


def check_fps(fps: float, what: str) -> float:
    if not (math.isfinite(fps) and MIN_FPS <= fps <= MAX_FPS):
        raise AvflowError(f"{what}: fps {fps:g} is outside [{MIN_FPS:g}, {MAX_FPS:g}]")
    return float(fps)



def recording_seconds(path: str | Path) -> float:
    """A recording's duration from its header alone (0.0 when the header cannot tell: the reader
    that opens it later reports the problem in its own words)."""
    import soundfile as sf

    try:
        info = sf.info(str(path))
    except (RuntimeError, OSError):  # libsndfile's errors are RuntimeErrors
        return 0.0
    return info.frames / info.samplerate if info.samplerate > 0 else 0.0


def check_recording(path: str | Path, what: str, *, limit: float = MAX_TIMELINE_SECONDS) -> float:
    """Refuse a recording longer than ``limit`` seconds before it is read (its header says)."""
    seconds = recording_seconds(path)
    if seconds > limit:
        raise AvflowError(f"{what} {path}: {seconds:,.0f} s long; at most {limit:g} s per timeline")
    return seconds
