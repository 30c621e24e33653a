"""The ``--model`` option of every command that uses a trained model, with one help text and one rule.

Which model runs is decided by :func:`avflow_cli.shipped.choose_model`: ``--model`` (a model
directory or a shipped name), else ``$AVFLOW_MODEL``, else the best shipped model. A model
``make demo`` built is used only when named, never picked up from the working tree.
"""

from __future__ import annotations

from typing import Any

import typer

from avflow_cli.constants import DEMO_MODEL_DIR
from avflow_cli.shipped import DEFAULT_MODEL, MODEL_ENV, shipped_names

MODEL_HELP = (f"AV-Flow model directory, or a shipped model: {', '.join(shipped_names())}. Default: ${MODEL_ENV} "
              f"when set (a directory or a shipped name), else `{DEFAULT_MODEL}`, the best model that ships. "
              f"The model `make demo` trains is used only when named: --model {DEMO_MODEL_DIR}.")


def model_option(note: str = "") -> Any:
    """``--model/-m``, a string so that a shipped name and ``./NAME`` (a folder of that name) stay apart."""
    return typer.Option(None, "--model", "-m", help=f"{note} {MODEL_HELP}".strip(), show_default=False)
