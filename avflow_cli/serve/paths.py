"""The server's own paths never reach a client: /health, meta.json, job records and errors name
models by their folder's name and uploads by the name the client gave (docs/serve.md, "Security").

Messages come from everywhere (the CLI's checks, ffmpeg, numpy), so rather than trusting each one,
every text that leaves the server passes :meth:`PathRedactor.text` (JSON: :meth:`PathRedactor.json`),
which replaces the absolute paths the server knows — its model folders, its jobs folder, the
temporary folder, the package — with public names, longest first.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")


def public_name(filename: str | None, default: str) -> str:
    """A client's file name as the server repeats it: the last path part only, no control
    characters or lone surrogates, at most 100 characters (``default`` when nothing is left)."""
    name = re.split(r"[\\/]", filename or "")[-1]
    name = _UNSAFE_NAME.sub("?", name).strip()[:100]
    return name or default


class PathRedactor:
    """Replaces known server paths in text with public names."""

    def __init__(self, pairs: Iterable[tuple[str | Path, str]] = ()) -> None:
        found: dict[str, str] = {}
        for path, public in pairs:
            for variant in (str(path), str(Path(path).resolve())):
                if len(variant) > 1 and variant.startswith("/"):  # never "" or "/" alone
                    found.setdefault(variant, public)
        self._pairs = sorted(found.items(), key=lambda kv: -len(kv[0]))

    @classmethod
    def for_server(cls, reads: Iterable[str | Path], jobs_dir: Path) -> PathRedactor:
        """Model folders become their names, the jobs folder ``jobs``; the temporary folder and the
        package are hidden too (messages of tools may name their temporaries)."""
        import avflow_cli

        pairs: list[tuple[str | Path, str]] = [(p, Path(p).name) for p in reads]
        pairs += [(jobs_dir, "jobs"), (tempfile.gettempdir(), "tmp"), (Path(avflow_cli.__file__).parent, "avflow_cli")]
        return cls(pairs)

    def extended(self, pairs: Iterable[tuple[str | Path, str]]) -> PathRedactor:
        """A copy that also replaces ``pairs`` (a job's uploads by the names the client gave)."""
        out = PathRedactor(pairs)
        out._pairs = sorted([*out._pairs, *self._pairs], key=lambda kv: -len(kv[0]))
        return out

    def text(self, text: str) -> str:
        for path, public in self._pairs:
            if path in text:
                text = text.replace(path, public)
        return text

    def json(self, value: Any) -> Any:
        """``value`` (JSON-like: dicts, lists, strings, numbers) with every string redacted."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {key: self.json(item) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.json(item) for item in value]
        return value
