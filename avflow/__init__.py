"""avflow: text to speech, face motion and head motion of a talking avatar, jointly (AV-Flow).

The Python API, in the style of ``import whisper``::

    import avflow

    synth = avflow.Synthesizer("demo_out/models/avflow")   # a model directory from `avflow train` or `avflow import`
    result = synth.synthesize("Hello there. How are you?", seed=0)
    result.wav, result.sample_rate                           # (N,) speech
    result.face, result.head_pose                            # (T, F) face codes, (T, 7) head pose at avflow.FPS
    synth.save(result, "out/")                               # speech.wav, motion.npz, meta.json, preview.mp4

The implementation lives in the package ``avflow_cli`` (the library the ``avflow`` command is a thin
layer over); this package only re-exports its public names. Nothing heavy is imported until a name
is first used, so ``import avflow`` is instant and does not load torch.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from avflow_cli import __version__
from avflow_cli.constants import FPS, SAMPLE_RATE
from avflow_cli.errors import AvflowError, InputFileError

if TYPE_CHECKING:  # pragma: no cover
    from avflow_cli.models.registry import load_model
    from avflow_cli.synth import SynthesisResult, Synthesizer

# public name -> the avflow_cli module that defines it (imported on first use)
_LAZY = {
    "Synthesizer": "avflow_cli.synth",
    "SynthesisResult": "avflow_cli.synth",
    "load_model": "avflow_cli.models.registry",
}

__all__ = ["__version__", "FPS", "SAMPLE_RATE", "AvflowError", "InputFileError", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value  # later look-ups skip this function
        return value
    raise AttributeError(f"module 'avflow' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
