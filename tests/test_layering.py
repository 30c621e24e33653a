"""Package layering (docs/INTERFACES.md §8): ``models/`` never imports ``data/``, and ``data/`` never
imports ``models/`` — the one place ``data/`` uses a model is the seam ``data/head_latents.py``,
which is handed a ``HeadEncoder`` built by its caller; what both share lives in leaf modules,
which import only other leaves.

Every module is parsed (not imported), so imports inside functions count as much as top-level ones.
"""

from __future__ import annotations

import ast
import functools
import re
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


# --- the layers of docs/ARCHITECTURE.md §7 ---------------------------------------------------------
# Leaves added with the layout of ARCHITECTURE.md §7 (kept apart from the LEAVES line above so
# branches that add leaves there merge cleanly; test_leaves_import_only_leaves reads the union).
LEAVES = LEAVES | {"gaps", "media_input", "shipped"}
# Pretrained-part registry: imports only leaves, so signal and vision code may ask it for weights.
REGISTRY_OF_PARTS = "checkpoints"
# Old paths kept one release as aliases of the moved module (ARCHITECTURE.md §7) for users' code;
# nothing in this repository imports them.
MOVED = {"avflow_cli.vision.demo_avatar": "avflow_cli.render.demo_avatar"}
OLD_PATH_USERS: frozenset[str] = frozenset()
# Import cycles still standing (each a set of modules); none is left and the list may only shrink:
KNOWN_CYCLES: tuple[frozenset[str], ...] = ()
# Who may call the sampler directly: the synthesis seam, streaming (the live session builds the cond
# rows it revises chunk by chunk), and the trainers (their
# training samples and ground-truth-aligned vocoder pairs). Everything else asks a Synthesizer.
MAY_SAMPLE = ("avflow_cli.models", "avflow_cli.synth", "avflow_cli.stream", "avflow_cli.live", "avflow_cli.train")
_MODULE_REF = re.compile(r"^(avflow_cli(?:\.\w+)+):\w+$")  # "module:Class" strings the registry imports by name


def _modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _under(mod: str, prefix: str) -> bool:
    return mod == prefix or mod.startswith(prefix + ".")


def _type_checking_lines(tree: ast.AST) -> set[int]:
    """Lines inside ``if TYPE_CHECKING:`` blocks: annotations only, never run."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for inner in node.body:
                lines.update(range(inner.lineno, (inner.end_lineno or inner.lineno) + 1))
    return lines


@functools.lru_cache(maxsize=1)
def _edges() -> tuple[tuple[str, int, str], ...]:
    mods = _modules()
    edges: set[tuple[str, int, str]] = set()
    for name, path in mods.items():
        source = path.read_text(encoding="utf-8")
        tree = ast.parse(source)
        skip = _type_checking_lines(tree)
        found = imported_modules(source, name, path.name == "__init__.py")
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and _MODULE_REF.match(node.value):
                found.append((node.lineno, _MODULE_REF.match(node.value).group(1)))
        found = [(line, mod) for line, mod in found if line not in skip]
        by_line: dict[int, list[str]] = {}
        for line, mod in found:
            by_line.setdefault(line, []).append(mod)
        for line, names in by_line.items():
            for mod in names:
                if any(other.startswith(mod + ".") and other in mods for other in names):
                    continue  # `from pkg import module`: the module is what is imported
                parts = mod.split(".")
                while parts and ".".join(parts) not in mods:
                    parts.pop()  # `from module import name` → the module
                target = ".".join(parts)
                if len(parts) > 1 and target != name:
                    edges.add((name, line, target))
    return tuple(sorted(edges))


def import_edges() -> list[tuple[str, int, str]]:
    """(importer, line, imported module) for every import of an avflow module, at any depth.

    ``from pkg import name`` counts as importing ``pkg.name`` when that is a module, else ``pkg``;
    ``"module:Class"`` strings count as imports of ``module`` (the registry imports those by name);
    imports of the package root ``avflow_cli`` (its version and lazy API) and imports under
    ``if TYPE_CHECKING:`` (never run) do not count. Parsed once per session.
    """
    return list(_edges())


def import_cycles(edges: list[tuple[str, int, str]]) -> list[frozenset[str]]:
    """Strongly connected sets of more than one module (Tarjan, iterative)."""
    graph: dict[str, set[str]] = {}
    for a, _, b in edges:
        graph.setdefault(a, set()).add(b)
        graph.setdefault(b, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[frozenset[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                members = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    members.add(member)
                    if member == node:
                        break
                if len(members) > 1:
                    cycles.append(frozenset(members))
    return cycles


def imports_outside(package: str, allowed: tuple[str, ...]) -> list[str]:
    """``importer:line imports X`` for imports by modules of ``package`` of anything not under ``allowed``."""
    leaves = tuple(f"avflow_cli.{leaf}" for leaf in LEAVES)
    return [f"{a}:{line} imports {b}" for a, line, b in import_edges()
            if _under(a, package) and a not in MOVED
            and not any(_under(b, ok) for ok in (package, *leaves, *allowed))]


def test_audio_keeps_signal_code_and_vocoder_networks() -> None:
    """audio/ never reaches the AV-Flow networks, trainers, data preparation or rendering."""
    assert imports_outside("avflow_cli.audio", (f"avflow_cli.{REGISTRY_OF_PARTS}", "avflow_cli.text")) == []


def test_vision_analyses_video_and_never_draws() -> None:
    assert imports_outside("avflow_cli.vision", (f"avflow_cli.{REGISTRY_OF_PARTS}",)) == []
    drawing = [p.name for p in (PACKAGE / "vision").glob("*.py") if module_name(p) not in MOVED
               and re.search(r"\bcv2\.(line|circle|ellipse|fillPoly|polylines|putText|rectangle)\b", p.read_text())]
    assert drawing == []


def test_text_and_registry_of_parts_stay_low() -> None:
    assert imports_outside("avflow_cli.text", ()) == []
    # the parts registry: leaves, and audio/ for the vocoder's own rule in doctor's summary
    assert imports_outside(f"avflow_cli.{REGISTRY_OF_PARTS}", ("avflow_cli.audio",)) == []


def test_moved_modules_are_aliases_and_nothing_here_uses_the_old_path() -> None:
    import importlib

    for old, new in MOVED.items():
        assert importlib.import_module(old) is importlib.import_module(new)
    users = {a for a, _, b in import_edges() if b in MOVED and a not in MOVED}
    assert users <= OLD_PATH_USERS


def test_generation_goes_through_the_synthesizer() -> None:
    """Only the synthesis seam (docs/ARCHITECTURE.md §6), streaming and the trainers call the sampler."""
    callers = [f"{a}:{line}" for a, line, b in import_edges()
               if b == "avflow_cli.models.inference" and not any(_under(a, ok) for ok in MAY_SAMPLE)]
    assert callers == []


def test_vocoder_training_is_a_trainer() -> None:
    assert not (PACKAGE / "audio" / "distill.py").exists()
    assert (PACKAGE / "train" / "vocoder.py").is_file()


def test_the_library_never_imports_the_cli() -> None:
    """cli/ is the top: value checks and limits live in the library (the leaf ``checks``)."""
    assert [f"{a}:{line} imports {b}" for a, line, b in import_edges()
            if _under(b, "avflow_cli.cli") and not _under(a, "avflow_cli.cli")] == []


def test_no_new_import_cycles() -> None:
    """Cycles through any import (function-level ones and the registry's by-name imports included)."""
    new = [sorted(c) for c in import_cycles(import_edges()) if c not in KNOWN_CYCLES]
    assert new == []


def test_the_cycle_finder_and_edges_see_what_they_must() -> None:
    edges = [("a.x", 1, "a.y"), ("a.y", 2, "a.z"), ("a.z", 3, "a.x"), ("a.z", 4, "a.w"), ("a.w", 5, "a.v")]
    assert import_cycles(edges) == [frozenset({"a.x", "a.y", "a.z"})]
    found = {(a, b) for a, _, b in import_edges()}
    # a function-level import, a by-name import of the registry, `from pkg import module`
    assert ("avflow_cli.synth", "avflow_cli.live.listen") in found  # inside Synthesizer.listen_session
    assert ("avflow_cli.models.registry", "avflow_cli.models.headvae") in found
    assert ("avflow_cli.render.video", "avflow_cli.render.mp4") in found
    assert not any(b == "avflow_cli" for _, b in found)


def test_every_import_of_avflow_names_an_existing_module() -> None:
    """A module moved or renamed on one branch and still imported by another fails here, by name."""
    mods = set(_modules())
    missing = []
    scripts = {f"benchmarks.{p.stem}": p for p in sorted((PACKAGE.parent / "benchmarks").glob("*.py"))}  # not run in CI
    for name, path in {**_modules(), **scripts}.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)] if node.level else []
                targets = [".".join(base + ([node.module] if node.module else []))]
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                continue
            missing += [f"{name}:{node.lineno} imports {t}" for t in targets
                        if (t == "avflow_cli" or t.startswith("avflow_cli.")) and t not in mods]
    assert missing == []
