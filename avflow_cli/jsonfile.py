"""Reading JSON files avflow is handed (configs, manifests, sessions, results): one place for their
one-line errors, so a damaged or binary file is never a traceback."""

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


def read_json(path: str | Path) -> object:
    """The parsed JSON of ``path``, which the caller expects to exist; a missing, unreadable, binary
    or invalid file is an :class:`InputFileError` naming it ("corrupt JSON (…)" when it does not
    parse). Each caller checks the shape it needs and says what a missing file means before this.
    """
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputFileError(path, "file not found") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InputFileError(path, f"corrupt JSON ({err})") from err
    except OSError as err:
        raise InputFileError(path, f"cannot read ({err.strerror or err})") from err
