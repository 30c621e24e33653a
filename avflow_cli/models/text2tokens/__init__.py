"""Text-to-tokens (docs/release_format.md §5): text → 29-d ASR token logits at FPS, Matcha-TTS style.

One module per component: ``text_encoder`` (embedding, conv prenet, RoPE transformer),
``duration_predictor``, ``transformer`` + ``decoder`` (U-Net vector field), ``flow_matching``
(CFM), ``alignment`` (monotonic alignment search), ``losses``, composed in ``model``;
``config`` holds the presets, ``convert`` reads the release checkpoint, ``io`` model directories.
"""

from __future__ import annotations

from avflow_cli.models.text2tokens.config import T2TConfig, preset
from avflow_cli.models.text2tokens.convert import convert_t2t_checkpoint
from avflow_cli.models.text2tokens.io import import_release_t2t, load_t2t, save_t2t
from avflow_cli.models.text2tokens.model import TextToTokens

__all__ = ["T2TConfig", "TextToTokens", "convert_t2t_checkpoint", "import_release_t2t", "load_t2t", "preset", "save_t2t"]
