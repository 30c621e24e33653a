"""Input tokens: Wav2Vec2 ASR base-960h character logits at 50 Hz (docs/ARCHITECTURE.md §1, docs/release_format.md §8).

The weights are torchaudio's ``WAV2VEC2_ASR_BASE_960H`` file,
``wav2vec2_fairseq_base_ls960_asr_ls960.pth``: a plain state dict of
``torchaudio.models.wav2vec2_base(aux_num_out=29)`` whose ``aux`` head still has fairseq's 32
dictionary rows (torchaudio drops rows 1–3, unused specials, when it loads the file; so do we).
Nothing is downloaded: place the file in ``$AVFLOW_CHECKPOINTS`` or torch hub's
``checkpoints/`` folder (where torchaudio's own download lands), or pass its path.

Long audio is cut into equal windows of ``window_seconds`` that overlap by ``overlap_seconds``,
run in batches, and their logits are cross-faded linearly over each overlap. Attention is global,
so windowed logits cannot equal whole-file logits exactly: the overlap only keeps every frame
away from a window edge. tests/audio/test_asr_tokens.py measures the deviation.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from avflow_cli.checkpoints import require_checkpoint
from avflow_cli.constants import TOKEN_DIM, TOKEN_HOP, TOKEN_LABELS, TOKEN_SAMPLE_RATE
from avflow_cli.device import resolve_device
from avflow_cli.errors import AvflowError, InputFileError
from avflow_cli.weights import state_dict_mismatch

RECEPTIVE_SAMPLES = 400  # the conv feature extractor's receptive field (frame length), 25 ms
FAIRSEQ_EXTRA_ROWS = (1, 2, 3)  # <pad>, </s>, <unk> rows of the 32-row fairseq head
WINDOW_SECONDS = 30.0
OVERLAP_SECONDS = 6.0
BATCH_SIZE = 4


def num_token_frames(num_samples: int) -> int:
    """Frames the wav2vec2 conv stack gives for ``num_samples`` samples at 16 kHz."""
    return 0 if num_samples < RECEPTIVE_SAMPLES else (num_samples - RECEPTIVE_SAMPLES) // TOKEN_HOP + 1


def check_label_order() -> None:
    """Fail loudly if torchaudio's bundle labels ever stop matching ``TOKEN_LABELS``."""
    from torchaudio.pipelines import WAV2VEC2_ASR_BASE_960H

    labels = tuple(WAV2VEC2_ASR_BASE_960H.get_labels())
    if labels != TOKEN_LABELS:
        raise AvflowError(f"torchaudio's WAV2VEC2_ASR_BASE_960H labels {labels} differ from avflow's TOKEN_LABELS")


def build_model() -> torch.nn.Module:
    """The wav2vec2 base architecture with the 29-way CTC head, in eval mode."""
    from torchaudio.models import wav2vec2_base

    return wav2vec2_base(aux_num_out=TOKEN_DIM).eval()


def read_state(path: Path) -> dict[str, torch.Tensor]:
    """torchaudio's state-dict file, with fairseq's extra head rows dropped; one-line errors otherwise."""
    from avflow_cli.torchfile import load_torch_file

    state = load_torch_file(path, "Wav2Vec2 checkpoint")  # weights only: never runs code
    if not isinstance(state, dict) or "aux.weight" not in state:
        raise InputFileError(
            path, "not torchaudio's WAV2VEC2_ASR_BASE_960H state dict (no 'aux.weight'; fairseq/HF files differ)"
        )
    state = dict(state)
    rows = state["aux.weight"].shape[0]
    if rows == TOKEN_DIM + len(FAIRSEQ_EXTRA_ROWS):
        keep = [i for i in range(rows) if i not in FAIRSEQ_EXTRA_ROWS]
        state["aux.weight"] = state["aux.weight"][keep]
        state["aux.bias"] = state["aux.bias"][keep]
    elif rows != TOKEN_DIM:
        raise InputFileError(path, f"CTC head has {rows} outputs, expected {TOKEN_DIM} (or 32 before trimming)")
    return state


def apply_state(model: torch.nn.Module, state: dict[str, torch.Tensor], path: Path) -> None:
    """Strict load whose failure names the file and a few offending keys."""
    problem = state_dict_mismatch(model, state)
    if problem:
        raise InputFileError(path, f"weights do not match wav2vec2 base: {problem}")
    model.load_state_dict(state, strict=True)


def load_state(path: Path, model: torch.nn.Module) -> None:
    """Load torchaudio's file at ``path`` into ``model`` (any wav2vec2 with a 29-way head)."""
    apply_state(model, read_state(path), path)


def windows(num_samples: int, window: int, overlap: int) -> list[tuple[int, int]]:
    """(start, end) samples of each window; starts are multiples of the hop so window frames
    land on the global 50 Hz grid. Every window is ``window`` long except the last, which runs
    to the end of the audio (up to one hop longer) so the final frame is always covered.
    """
    if num_samples <= window:
        return [(0, num_samples)]
    step = max(TOKEN_HOP, (window - overlap) // TOKEN_HOP * TOKEN_HOP)
    step = min(step, num_token_frames(window) * TOKEN_HOP)  # no frame may fall between windows
    last = (num_samples - window) // TOKEN_HOP * TOKEN_HOP
    return [(s, s + window) for s in range(0, last, step)] + [(last, num_samples)]


def _ramp_weights(n: int, fade_in: int, fade_out: int) -> np.ndarray:
    """Per-frame weights (n,): linear ramps up over ``fade_in`` frames and down over ``fade_out``."""
    w = np.ones(n, dtype=np.float64)
    if fade_in > 0:
        w[:fade_in] = (np.arange(fade_in) + 0.5) / fade_in
    if fade_out > 0:
        w[n - fade_out :] = np.minimum(w[n - fade_out :], (np.arange(fade_out)[::-1] + 0.5) / fade_out)
    return w


class Wav2Vec2Tokens:
    """Wav2Vec2 ASR base-960h logits extractor; see the module docstring for chunking."""

    name = "wav2vec2_asr_base_960h"

    def __init__(
        self,
        checkpoint: str | Path | None = None,
        device: str | torch.device = "auto",
        *,
        window_seconds: float = WINDOW_SECONDS,
        overlap_seconds: float = OVERLAP_SECONDS,
        batch_size: int = BATCH_SIZE,
        model: torch.nn.Module | None = None,
    ):
        """Load the weights (``checkpoint`` path, else the checkpoint folders).

        ``device="auto"`` picks the GPU when one is visible; windows run ``batch_size`` at a time.

        ``model`` injects an already-built torchaudio Wav2Vec2Model instead (tests use random
        weights this way); then no file is read.
        """
        check_label_order()
        if overlap_seconds < 0 or window_seconds <= overlap_seconds:
            raise AvflowError("wav2vec2 chunking needs 0 <= overlap_seconds < window_seconds")
        self.device = resolve_device(device)
        if model is None:
            path = require_checkpoint("wav2vec2", checkpoint)
            state = read_state(path)  # format errors surface before the model is built
            model = build_model()
            apply_state(model, state, path)
            self.source = str(path)
        else:
            self.source = "injected model"
        self.model = model.eval().to(self.device)
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.window = int(round(window_seconds * TOKEN_SAMPLE_RATE))
        self.overlap = int(round(overlap_seconds * TOKEN_SAMPLE_RATE))
        self.batch_size = max(1, int(batch_size))

    def _prepare(self, wav: np.ndarray | torch.Tensor, sr: int) -> torch.Tensor:
        from avflow_cli.audio.io import resample

        x = torch.as_tensor(wav, dtype=torch.float32)
        if x.ndim == 2 and x.shape[0] == 1:
            x = x[0]
        if x.ndim != 1:
            raise AvflowError(f"wav2vec2 tokens need mono audio, got shape {tuple(x.shape)} (pick one channel)")
        if not torch.isfinite(x).all():
            raise AvflowError("audio contains NaN or Inf samples")
        x = resample(x, int(sr), TOKEN_SAMPLE_RATE)  # (N16,)
        if x.shape[-1] < RECEPTIVE_SAMPLES:
            raise AvflowError(f"audio too short for one token frame ({x.shape[-1]} samples at 16 kHz < 400)")
        return x

    def _forward(self, batch: torch.Tensor) -> np.ndarray:  # (B, W) -> (B, n_w, 29)
        with torch.inference_mode():
            logits, _ = self.model(batch.to(self.device))
        return logits.float().cpu().numpy()

    def logits(self, wav: np.ndarray | torch.Tensor, sr: int) -> np.ndarray:
        """CTC logits (no softmax) at 50 Hz.

        shape: wav (N,) or (1, N) at ``sr`` → (N_tok, 29) float32, N_tok = (N16 − 400) // 320 + 1
        """
        x = self._prepare(wav, sr)  # (N16,)
        spans = windows(x.shape[-1], self.window, self.overlap)
        if len(spans) == 1:
            return self._forward(x[None])[0].astype(np.float32)  # (N_tok, 29)
        total = num_token_frames(x.shape[-1])
        frames = [(s // TOKEN_HOP, s // TOKEN_HOP + num_token_frames(e - s)) for s, e in spans]
        out = np.zeros((total, TOKEN_DIM), dtype=np.float64)
        weight = np.zeros(total, dtype=np.float64)
        i = 0
        while i < len(spans):  # batches of equal-length windows (only the last may differ)
            length = spans[i][1] - spans[i][0]
            j = i
            while j < len(spans) and j - i < self.batch_size and spans[j][1] - spans[j][0] == length:
                j += 1
            batch = torch.stack([x[s:e] for s, e in spans[i:j]])  # (B, W)
            for k, lg in enumerate(self._forward(batch), start=i):  # lg (n_w, 29)
                f0, f1 = frames[k]
                fade_in = frames[k - 1][1] - f0 if k > 0 else 0
                fade_out = f1 - frames[k + 1][0] if k + 1 < len(spans) else 0
                w = _ramp_weights(f1 - f0, max(0, fade_in), max(0, fade_out))
                out[f0:f1] += w[:, None] * lg
                weight[f0:f1] += w
            i = j
        return (out / weight[:, None]).astype(np.float32)  # (N_tok, 29)
