"""``avflow prep tokens`` on an LJSpeech-layout folder: ``tokens/ID.npy`` for text-to-tokens training.

Each entry of ``metadata.csv`` (read by :func:`avflow_cli.data.t2t_dataset.read_metadata`, the one
parser of that file) gets (N_tok, 29) logits at 50 Hz: Wav2Vec2's when its weights are found,
else CTC-shaped logits from the forced alignment in ``alignments/ID.json``, exactly as ``prep``
makes them for sessions. The kind of tokens is recorded (:mod:`avflow_cli.data.token_source`) so
a folder never mixes kinds. Data preparation, so it lives in ``data/``: ``audio/`` keeps the
signal code it calls.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from avflow_cli.audio.alignment_tokens import ALIGNMENT_EXTRACTOR, alignment_turn, tokens_from_transcript
from avflow_cli.data.t2t_dataset import read_metadata
from avflow_cli.data.token_source import record_ljspeech_source
from avflow_cli.errors import AvflowError


def ljspeech_tokens(
    folder: str | Path,
    source: str = "auto",
    checkpoint: str | Path | None = None,
    device: str = "cpu",
    progress_cb: Any = None,
) -> tuple[int, str]:
    """Write ``tokens/ID.npy`` (N_tok, 29) for every entry of an LJSpeech-layout folder.

    Returns (files written, source used). Entries whose token file exists are skipped.
    """
    from avflow_cli.audio.io import read_audio
    from avflow_cli.fsutil import atomic_path

    folder = Path(folder)
    rows = read_metadata(folder)
    extractor = None
    if source in ("auto", "wav2vec2"):
        try:
            from avflow_cli.audio.asr_tokens import Wav2Vec2Tokens

            extractor = Wav2Vec2Tokens(checkpoint=checkpoint, device=device)
            source = "wav2vec2"
        except AvflowError:
            if source == "wav2vec2" or not (folder / "alignments").is_dir():
                raise
            source = "alignment"
    if source not in ("alignment", "wav2vec2"):
        raise AvflowError(f"unknown token source {source!r} (auto, wav2vec2 or alignment)")
    name = getattr(extractor, "name", None) if extractor is not None else ALIGNMENT_EXTRACTOR
    record_ljspeech_source(folder, source, name)  # refuses mixing kinds
    written = 0
    for item_id, text in rows:
        out = folder / "tokens" / f"{item_id}.npy"
        if out.is_file():
            if progress_cb:
                progress_cb()
            continue
        wav_path = folder / "wavs" / f"{item_id}.wav"
        audio, sr = read_audio(wav_path)
        mono = audio.mean(axis=0)  # (N,)
        if extractor is not None:
            logits = np.asarray(extractor.logits(mono, sr), dtype=np.float32)
        else:
            turn = alignment_turn(folder / "alignments" / f"{item_id}.json", text)
            logits = tokens_from_transcript([turn], len(mono) / sr, None)  # exactly as prep makes them
        with atomic_path(out) as tmp:
            np.save(tmp, logits)
        written += 1
        if progress_cb:
            progress_cb()
    return written, source
