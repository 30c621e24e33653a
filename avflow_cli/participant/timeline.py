"""The avatar's tokens and the participant's guidance on one timeline (T frames at FPS).

The timeline lasts as long as the longer of the two. Past the end of its own speech the avatar
gets silence tokens (it listens); past the end of the recording the participant is a silent
listener (silence tokens) with no visual guidance (zeros in normalised space, the value guidance
dropout taught the model to read as "no guidance"; ``inference.build_cond`` pads with it).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from avflow_cli import constants as K


def pad_rows(rows: np.ndarray, total: int, filler: np.ndarray) -> np.ndarray:
    """rows (n, D) followed by filler rows up to ``total`` (filler (≥ total − n, D))."""
    if len(rows) >= total:
        return rows
    return np.concatenate([rows, filler[: total - len(rows)]]).astype(np.float32)


def align_guidance(cfg: Any, tokens: np.ndarray, participant: Any) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """(tokens (T, 29), p_tokens (T, 29) | None, p_smirk (≤T, D) | None) for ``generate``."""
    from avflow_cli.participant.tokens import silence_tokens

    if participant is None or (participant.p_tokens is None and participant.p_smirk is None):
        return tokens, None, None
    source = getattr(cfg, "token_source", "")
    total = max(len(tokens), participant.frames)
    if len(tokens) < total:
        tokens = pad_rows(tokens, total, silence_tokens(total - len(tokens), source))
    p_tokens = participant.p_tokens
    if p_tokens is not None and len(p_tokens) < total:
        note = (f"participant audio ({len(p_tokens) / K.FPS:.2f} s) is shorter than the avatar's speech "
                f"({total / K.FPS:.2f} s): padded with silence (the user listens)")
        if note not in participant.warnings:
            participant.warnings.append(note)
        p_tokens = pad_rows(p_tokens, total, silence_tokens(total - len(p_tokens), source))
    return tokens, p_tokens, participant.p_smirk
