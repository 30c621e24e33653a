"""One name, one thing: no two public classes of the package share a name.

Parsed, not imported. Two classes that merely share a name make ``from … import X`` ambiguous
to a reader and to grep; the two left are listed with their reason and the list may only shrink.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "avflow_cli"
KNOWN = {
    # the same activation in two published networks whose weights load by these module layouts
    "SnakeBeta": {"avflow_cli/audio/bigvgan.py", "avflow_cli/models/text2tokens/transformer.py"},
}


def public_classes() -> dict[str, set[str]]:
    found: dict[str, set[str]] = defaultdict(set)
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                found[node.name].add(str(path.relative_to(PACKAGE.parent)))
    return found


def test_public_class_names_are_unique() -> None:
    shared = {name: where for name, where in public_classes().items() if len(where) > 1}
    assert {name: where for name, where in shared.items() if KNOWN.get(name) != where} == {}


def test_the_renamed_ones_stay_apart() -> None:
    classes = public_classes()
    assert classes["StreamStats"] == {"avflow_cli/stream.py"} and "NormStats" in classes
    assert classes["Motion"] == {"avflow_cli/render/motion.py"} and "GeneratedMotion" in classes
    assert "MetadataLine" in classes
