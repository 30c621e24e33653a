"""Text-to-tokens training data from an LJSpeech-layout folder.

Layout: ``metadata.csv`` (``id|text|normalised text``, no header), ``wavs/ID.wav`` and
``tokens/ID.npy`` (29-d ASR logits at 50 Hz, from ``avflow prep tokens``). Tokens are
resampled to ``FPS`` by timestamps when a batch is built. Batches are a pure function of the
step (seeded by step and rank), so a resumed run sees exactly the batches it would have seen.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from avflow_cli.constants import TOKEN_DIM, TOKEN_RATE
from avflow_cli.errors import AvflowError, InputFileError

METADATA = "metadata.csv"
TOKENS_DIR = "tokens"
STATS_FILES = 500  # files read to estimate the token normalisation statistics
IDS_CACHE_VERSION = 1


@dataclass
class Utterance:
    """One training example: symbol ids (blanks interspersed) and its 50 Hz token file."""

    uid: str
    text: str
    ids: list[int]
    tokens_path: Path


def read_metadata(data_dir: str | Path) -> list[tuple[str, str]]:
    """``metadata.csv`` → [(id, text)], preferring the normalised column when it is filled.

    Parsed and checked by the one reader of that file, the LJSpeech importer's
    (:func:`avflow_cli.data.importers.ljspeech.read_metadata`: 2 or 3 fields, plain unique ids).
    """
    from avflow_cli.data.importers.ljspeech import read_metadata as read_lines

    path = Path(data_dir) / METADATA
    if not path.is_file():
        raise InputFileError(path, "missing; an LJSpeech-layout folder needs metadata.csv (id|text|normalised)")
    return [(line.id, line.normalized) for line in read_lines(path)]


def load_tokens_fps(path: Path) -> np.ndarray:
    """A 50 Hz token file → (T, 29) float32 at FPS (linear interpolation by timestamps)."""
    from avflow_cli.data.resample import resample_to_fps

    try:
        tok = np.load(path)
    except (OSError, ValueError) as err:
        raise InputFileError(path, f"unreadable .npy file ({err})") from err
    if tok.ndim != 2 or tok.shape[1] != TOKEN_DIM or len(tok) < 2:
        raise InputFileError(path, f"expected (N, {TOKEN_DIM}) token logits at {TOKEN_RATE:g} Hz, got shape {tok.shape}")
    return resample_to_fps(tok.astype(np.float32), TOKEN_RATE)


def load_utterances(data_dir: str | Path, cache: Path | None = None, *, cached_only: bool = False) -> list[Utterance]:
    """Read metadata, check token files exist and phonemise every text (one espeak call).

    ``cache`` (a JSON file) keeps the symbol ids so a resumed run does not phonemise again.
    ``cached_only``: keep just the utterances whose text the cache holds (a model's own training
    texts), phonemise and write nothing; the list may then be empty.
    """
    from avflow_cli.text import texts_to_symbol_ids

    data_dir = Path(data_dir)
    rows = read_metadata(data_dir)
    missing = [uid for uid, _ in rows if not (data_dir / TOKENS_DIR / f"{uid}.npy").is_file()]
    if missing:
        raise InputFileError(
            data_dir / TOKENS_DIR,
            f"{len(missing)} of {len(rows)} token files missing (e.g. {missing[0]}.npy); run `avflow prep tokens` on this folder",
        )
    cached: dict[str, list[int]] = {}
    if cache is not None and cache.is_file():
        obj = json.loads(cache.read_text())
        if obj.get("version") == IDS_CACHE_VERSION:
            cached = obj["ids"]
    if cached_only:
        return [Utterance(uid, text, cached[text], data_dir / TOKENS_DIR / f"{uid}.npy")
                for uid, text in rows if cached.get(text)]
    todo = [text for _, text in rows if text not in cached]
    if todo:
        for text, ids in zip(todo, _ids_skipping_errors(todo, texts_to_symbol_ids), strict=True):
            cached[text] = ids
        if cache is not None:
            from avflow_cli.fsutil import atomic_path

            with atomic_path(cache) as tmp:
                tmp.write_text(json.dumps({"version": IDS_CACHE_VERSION, "ids": cached}))
    out = [Utterance(uid, text, cached[text], data_dir / TOKENS_DIR / f"{uid}.npy") for uid, text in rows if cached[text]]
    if not out:
        raise AvflowError(f"{data_dir}: no utterance has pronounceable text")
    return out


def _ids_skipping_errors(texts: list[str], convert) -> list[list[int]]:  # noqa: ANN001 - the text front end
    """Batch conversion; a text with nothing pronounceable becomes [] (skipped) instead of failing the run."""
    try:
        return convert(texts)
    except AvflowError:
        out = []
        for t in texts:
            try:
                out.append(convert([t])[0])
            except AvflowError:
                out.append([])
        return out


def token_statistics(utts: list[Utterance], seed: int = 0) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of the tokens at FPS over up to ``STATS_FILES`` utterances."""
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(utts), size=min(len(utts), STATS_FILES), replace=False)
    frames = np.concatenate([load_tokens_fps(utts[i].tokens_path) for i in sorted(pick)], axis=0)  # (ΣT, 29)
    std = np.maximum(frames.std(0), 1e-3)
    return [float(v) for v in frames.mean(0)], [float(v) for v in std]


class T2TBatches(torch.utils.data.Dataset):
    """``dataset[step]`` → a padded batch for that step: ids (B, N), x_lengths, tokens (B, T, 29), y_lengths."""

    def __init__(self, utts: list[Utterance], batch_size: int, seed: int, rank: int = 0, world: int = 1) -> None:
        if not utts:
            raise AvflowError("no training utterances")
        self.utts, self.batch_size, self.seed, self.rank, self.world = utts, batch_size, seed, rank, world

    def __len__(self) -> int:  # the sampler decides which steps are drawn
        return 1 << 62

    def __getitem__(self, step: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng([self.seed, int(step), self.rank])
        pick = rng.choice(len(self.utts), size=self.batch_size, replace=len(self.utts) < self.batch_size)
        return collate_utterances([self.utts[i] for i in pick])


def collate_utterances(utts: list[Utterance]) -> dict[str, torch.Tensor]:
    """Pad ids and FPS tokens of ``utts`` into one batch; each item keeps >= 1 frame per symbol."""
    toks = [load_tokens_fps(u.tokens_path) for u in utts]
    x_len = [len(u.ids) for u in utts]
    y_len = [max(len(t), n) for t, n in zip(toks, x_len, strict=True)]  # MAS needs frames >= symbols
    x = torch.zeros(len(utts), max(x_len), dtype=torch.long)  # (B, N)
    y = torch.zeros(len(utts), max(y_len), TOKEN_DIM)  # (B, T, 29)
    for i, (u, t) in enumerate(zip(utts, toks, strict=True)):
        x[i, : x_len[i]] = torch.tensor(u.ids)
        y[i, : len(t)] = torch.from_numpy(t)
        if len(t) < y_len[i]:  # rare: text longer than audio; hold the last frame
            y[i, len(t) : y_len[i]] = y[i, len(t) - 1]
    return {"x": x, "x_lengths": torch.tensor(x_len), "tokens": y, "y_lengths": torch.tensor(y_len)}


def split_utterances(utts: list[Utterance], seed: int) -> tuple[list[Utterance], list[Utterance]]:
    """A fixed validation split: 5 % of utterances (at most 64), none when there are under 20."""
    n_val = 0 if len(utts) < 20 else min(64, len(utts) // 20)
    order = np.random.default_rng(seed).permutation(len(utts))
    val = sorted(order[:n_val].tolist())
    val_set = set(val)
    return [u for i, u in enumerate(utts) if i not in val_set], [utts[i] for i in val]
