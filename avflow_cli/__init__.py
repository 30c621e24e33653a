"""avflow: text to speech, face motion and head motion, jointly (AV-Flow).

The package is the library; ``avflow`` (``avflow_cli.cli.main``) is a thin CLI over it.
Heavy submodules are imported lazily so ``avflow --help`` stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["__version__", "load_model", "Synthesizer"]

if TYPE_CHECKING:  # pragma: no cover
    from avflow_cli.models.registry import load_model
    from avflow_cli.synth import Synthesizer


def __getattr__(name: str) -> Any:
    if name == "load_model":
        from avflow_cli.models.registry import load_model

        return load_model
    if name == "Synthesizer":
        from avflow_cli.synth import Synthesizer

        return Synthesizer
    raise AttributeError(f"module 'avflow_cli' has no attribute {name!r}")
