"""Package layering (docs/INTERFACES.md §8): ``models/`` never imports ``data/``, and ``data/`` never
imports ``models/`` — the one place ``data/`` uses a model is the seam ``data/head_latents.py``,
which is handed a ``HeadEncoder`` built by its caller; what both share lives in leaf modules,
which import only other leaves.

Every module is parsed (not imported), so imports inside functions count as much as top-level ones.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "avflow_cli"
# modules of data/ allowed to import models/: none, the seam takes the model as an argument
DATA_MAY_IMPORT_MODELS: frozenset[str] = frozenset()
SEAM = "avflow_cli.data.head_latents"
LEAVES = frozenset({"constants", "errors", "fsutil", "console", "jsonfile", "torchfile", "weights", "stats", "device",
                    "checks", "npzfile", "shipped"})


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(source: str, name: str, is_package: bool = False) -> list[tuple[int, str]]:
    """(line, dotted module) of every import in ``source`` (module ``name``), at any depth.

    Relative imports are resolved; ``from a import b`` yields ``a.b`` too (b may be a module);
    ``importlib.import_module("…")`` / ``__import__("…")`` with a literal name count as imports.
    """
    package = name if is_package else name.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            found.append((node.lineno, mod))
            found += [(node.lineno, f"{mod}.{alias.name}") for alias in node.names]
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if called in ("import_module", "__import__"):
                found.append((node.lineno, node.args[0].value))
    return found


def violations(subpackage: str, forbidden: str, allowed: frozenset[str] = frozenset()) -> list[str]:
    """``file:line imports X`` for each import of ``forbidden`` (or below it) by a module of ``subpackage``."""
    out: dict[str, str] = {}  # file:line → the first (shortest) forbidden module imported there
    for path in sorted((PACKAGE / subpackage).rglob("*.py")):
        name = module_name(path)
        if name in allowed:
            continue
        for line, mod in imported_modules(path.read_text(encoding="utf-8"), name, path.name == "__init__.py"):
            if mod == forbidden or mod.startswith(forbidden + "."):
                out.setdefault(f"{path.relative_to(PACKAGE.parent)}:{line}", mod)
    return [f"{where} imports {mod}" for where, mod in out.items()]


def test_models_never_import_data() -> None:
    assert violations("models", "avflow_cli.data") == []


def test_data_imports_models_only_through_the_seam() -> None:
    assert violations("data", "avflow_cli.models", DATA_MAY_IMPORT_MODELS) == []


def test_leaves_import_only_leaves() -> None:
    """What data/ and models/ share (e.g. stats.floor_std) lives in a leaf, which may pull in neither."""
    bad = []
    for leaf in sorted(LEAVES):
        path = PACKAGE / f"{leaf}.py"
        for line, mod in imported_modules(path.read_text(encoding="utf-8"), f"avflow_cli.{leaf}"):
            parts = mod.split(".")
            if parts[0] == "avflow_cli" and len(parts) > 1 and parts[1] not in LEAVES:
                bad.append(f"avflow_cli/{leaf}.py:{line} imports {mod}")
    assert bad == []


def test_the_seam_takes_the_model_as_an_argument() -> None:
    """The documented seam exists and is what its callers use: an encoder object, not a model directory."""
    import inspect

    from avflow_cli.data import head_latents

    assert head_latents.__name__ == SEAM and "HeadEncoder" in (head_latents.__doc__ or "")
    params = inspect.signature(head_latents.encode_head_into_shards).parameters
    assert params["encoder"].annotation in ("HeadEncoder", head_latents.HeadEncoder)


@pytest.mark.parametrize(
    ("source", "module", "expected"),
    [
        ("import avflow_cli.models.registry", "avflow_cli.data.x", "avflow_cli.models.registry"),
        ("from avflow_cli.models.normalize import floor_std", "avflow_cli.data.x", "avflow_cli.models.normalize"),
        ("from avflow_cli import models", "avflow_cli.data.x", "avflow_cli.models"),
        ("def f():\n    from avflow_cli.models import registry\n", "avflow_cli.data.x", "avflow_cli.models"),
        ("from ..models import registry", "avflow_cli.data.x", "avflow_cli.models"),
        ("from ...models.headvae import HeadVAE", "avflow_cli.data.importers.y", "avflow_cli.models.headvae"),
        ("import importlib\nimportlib.import_module('avflow_cli.models.headvae')", "avflow_cli.data.x", "avflow_cli.models.headvae"),
    ],
)
def test_the_scan_sees_every_form_of_import(source: str, module: str, expected: str) -> None:
    """The checker itself: absolute, ``from pkg import module``, function-level, relative, importlib."""
    assert expected in [mod for _, mod in imported_modules(source, module)]


def test_the_scan_resolves_relative_imports_of_a_package_init() -> None:
    assert "avflow_cli.data.schema" in [m for _, m in imported_modules("from .schema import ShardIndex", "avflow_cli.data", True)]
    assert not [m for _, m in imported_modules("from avflow_cli.modelsx import y", "avflow_cli.data.x")
                if m == "avflow_cli.models" or m.startswith("avflow_cli.models.")]
