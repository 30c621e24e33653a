"""Reading a JSON config file that a user pointed at: one place for its one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

from avflow_cli.errors import InputFileError


def read_json_config(path: str | Path) -> object:
    """The parsed JSON of ``path``; a missing, unreadable or invalid file is an :class:`InputFileError`.

    The value is returned as parsed (not necessarily a dict): each caller checks the shape it needs.
    """
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise InputFileError(path, "config.json not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InputFileError(path, f"not a readable JSON config ({err})") from err
