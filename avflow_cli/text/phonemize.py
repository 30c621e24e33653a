"""IPA phonemes with stress through espeak-ng, configured exactly like the release's cleaner.

The backend is built once per process (building it costs ~50 ms and loads espeak's data) and
only when first needed, so importing avflow never touches espeak.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from typing import Any

from avflow_cli.errors import AvflowError

LANGUAGE = "en-us"


@functools.lru_cache(maxsize=1)
def _backend() -> Any:
    """The shared EspeakBackend(en-us, punctuation kept, stress marks, language flags removed)."""
    try:
        from phonemizer.backend import EspeakBackend
    except ImportError as err:  # pragma: no cover - phonemizer is a core dependency
        raise AvflowError("the 'phonemizer' package is required for text input (pip install phonemizer)") from err
    quiet = logging.getLogger("phonemizer")
    quiet.setLevel(logging.CRITICAL)
    try:
        return EspeakBackend(
            language=LANGUAGE,
            preserve_punctuation=True,
            with_stress=True,
            language_switch="remove-flags",
            logger=quiet,
        )
    except RuntimeError as err:
        raise AvflowError(f"espeak-ng is not usable ({err}); install it, e.g. apt-get install espeak-ng") from err


def phonemize(texts: Sequence[str]) -> list[str]:
    """Cleaned texts → IPA strings (one espeak call for the whole batch, which is much faster)."""
    if not texts:
        return []
    return list(_backend().phonemize(list(texts), strip=True, njobs=1))
