"""A small learnable LJSpeech-layout folder for tests and benchmarks of text-to-tokens.

Each phoneme symbol gets a fixed duration (frames at FPS) and a fixed 29-d logit pattern, so
the token track of a sentence is fully determined by its phonemes: a model that learns it has
learnt durations and per-symbol outputs. Tokens are stored at 50 Hz like ``avflow prep tokens``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from avflow_cli.constants import FPS, SAMPLE_RATE, TOKEN_DIM, TOKEN_RATE
from avflow_cli.text.symbols import N_SYMBOLS, PAD_ID

WORDS = (
    "the a cat dog sat on mat red blue green big small house tree sun moon river stone bird fish "
    "happy quiet morning evening light dark open close runs walks sings reads quickly slowly"
).split()
BLANK_FRAMES = 1  # frames given to each interspersed blank


def symbol_durations(seed: int = 0) -> np.ndarray:
    """Frames at FPS per symbol id: blanks get ``BLANK_FRAMES``, other symbols 3..8."""
    dur = np.random.default_rng(seed).integers(3, 9, size=N_SYMBOLS)
    dur[PAD_ID] = BLANK_FRAMES
    return dur


def symbol_patterns(seed: int = 0) -> np.ndarray:
    """(178, 29) logit pattern per symbol id."""
    return (np.random.default_rng(seed + 1).normal(size=(N_SYMBOLS, TOKEN_DIM)) * 2.0).astype(np.float32)


def tokens_for_ids(ids: list[int], seed: int = 0, noise: float = 0.05, rng: np.random.Generator | None = None) -> np.ndarray:
    """Symbol ids (blanks interspersed) → (T, 29) token logits at FPS."""
    dur, pat = symbol_durations(seed), symbol_patterns(seed)
    frames = np.repeat(np.asarray(ids), dur[np.asarray(ids)])  # (T,)
    out = pat[frames]
    if noise and rng is not None:
        out = out + rng.normal(scale=noise, size=out.shape).astype(np.float32)
    return out


def make_synthetic_ljspeech(out: str | Path, n: int = 32, seed: int = 0, words: tuple[int, int] = (3, 6)) -> Path:
    """Write ``metadata.csv``, ``wavs/`` (silence of the right length) and ``tokens/`` (50 Hz) under ``out``.

    ``n`` sentences of ``words[0]..words[1]`` random words each.
    """
    from avflow_cli.audio.io import write_audio
    from avflow_cli.data.resample import resample_to_fps
    from avflow_cli.text import texts_to_symbol_ids

    out = Path(out)
    (out / "wavs").mkdir(parents=True, exist_ok=True)
    (out / "tokens").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    texts = [" ".join(rng.choice(WORDS, size=rng.integers(words[0], words[1] + 1))).capitalize() + "." for _ in range(n)]
    lines = []
    for i, (text, ids) in enumerate(zip(texts, texts_to_symbol_ids(texts), strict=True)):
        uid = f"SYN-{i:04d}"
        tok_fps = tokens_for_ids(ids, seed, rng=rng)  # (T, 29) at FPS
        tok_50 = resample_to_fps(tok_fps, FPS, dst_rate=TOKEN_RATE)  # (N, 29) at 50 Hz
        np.save(out / "tokens" / f"{uid}.npy", tok_50.astype(np.float32))
        write_audio(out / "wavs" / f"{uid}.wav", np.zeros(int(len(tok_fps) / FPS * SAMPLE_RATE), np.float32), SAMPLE_RATE)
        lines.append(f"{uid}|{text}|{text}")
    (out / "metadata.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out
