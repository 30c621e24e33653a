"""The repository stands alone: what code and docs cite is in the repository.

No file cites the design notes that lived outside it (the design is `docs/ARCHITECTURE.md`, the
authors' file formats `docs/release_format.md`); every `docs/X.md` cited exists, every `§N` cited
of a docs page is one of its numbered sections, and every repository path a file names exists
(relative to the repository root or to the citing file's folder).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCANNED_DIRS = ("avflow_cli", "avflow", "tests", "docs", "benchmarks", "pipelines", ".ci")
SCANNED_FILES = ("README.md", "Makefile", "pyproject.toml")
TEXT_SUFFIXES = {".py", ".md", ".toml", ".sh", ".slurm", ".txt", ".cfg", ".yaml", ".yml", ".html", ".js", ""}
OUTSIDE = re.compile("(" + "|".join(["DESIGN" + r"\.md", "REFERENCE" + r"\.md", r"\.\./" + "shared"]) + ")")
DOC_CITE = re.compile(r"docs/([\w-]+\.md)(?:\s+(§\s*\d+(?:\s*[,/]\s*§\s*\d+)*))?")
REPO_PATH = re.compile(r"(?<![\w./-])((?:avflow_cli|avflow|tests|docs|benchmarks|pipelines)/[\w./-]*\w\.(?:py|md|toml|sh|slurm|json|txt|png|npz))")


def text_files() -> list[Path]:
    files = [ROOT / name for name in SCANNED_FILES if (ROOT / name).is_file()]
    for folder in SCANNED_DIRS:
        for path in sorted((ROOT / folder).rglob("*")):
            if path.is_file() and path.suffix in TEXT_SUFFIXES and "__pycache__" not in path.parts \
                    and path != Path(__file__).resolve():  # this checker's own examples are faults on purpose
                files.append(path)
    return files


def read(path: Path) -> str:
    return path.read_text(encoding="utf-8", errors="replace")


def numbered_sections(doc: Path) -> set[int]:
    return {int(m) for m in re.findall(r"^#{2,3} (\d+)\.", read(doc), flags=re.M)}


def citation_faults(files: list[Path], root: Path = ROOT) -> list[str]:
    """``file:line: problem`` for each outside citation, missing docs page, missing § or missing path.

    ``root``: the tree the files belong to (paths are resolved against it); docs pages are ROOT's.
    """
    faults = []
    for path in files:
        text = read(path)

        def where(pos: int) -> str:
            return f"{path.relative_to(root)}:{text.count(chr(10), 0, pos) + 1}"

        for m in OUTSIDE.finditer(text):
            faults.append(f"{where(m.start())}: cites {m.group(1)}, which is outside the repository")
        for m in DOC_CITE.finditer(text):
            doc = ROOT / "docs" / m.group(1)
            if not doc.is_file():
                faults.append(f"{where(m.start())}: docs/{m.group(1)} does not exist")
            elif m.group(2):
                missing = {int(n) for n in re.findall(r"\d+", m.group(2))} - numbered_sections(doc)
                if missing:
                    faults.append(f"{where(m.start())}: docs/{m.group(1)} has no § {sorted(missing)}")
        for m in REPO_PATH.finditer(text):
            cited = m.group(1)
            if cited.startswith("docs/") and cited.endswith(".md"):
                continue  # a docs page: checked above, against ROOT's docs/
            if not ((root / cited).exists() or (path.parent / cited).exists()):
                faults.append(f"{where(m.start())}: {cited} does not exist")
    return faults


def test_nothing_cites_files_outside_the_repository_or_missing_ones() -> None:
    files = text_files()
    assert len(files) > 100  # the scan really read the tree
    assert citation_faults(files) == []


def test_the_design_pages_exist_and_are_cited() -> None:
    """The pages that replaced the outside notes are numbered and cited from the code."""
    for name in ("ARCHITECTURE.md", "release_format.md"):
        assert numbered_sections(ROOT / "docs" / name) >= set(range(1, 10)), name
    cited = "\n".join(read(p) for p in (ROOT / "avflow_cli").rglob("*.py"))
    assert "docs/ARCHITECTURE.md §" in cited and "docs/release_format.md §" in cited


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("see " + "DESIGN" + ".md §2", "outside the repository"),
        ("(" + "REFERENCE" + ".md §4)", "outside the repository"),
        ("`../" + "shared/STYLE.md`", "outside the repository"),
        ("see docs/NO_SUCH_PAGE.md", "does not exist"),
        ("docs/ARCHITECTURE.md §99", "has no §"),
        ("docs/release_format.md §1, §42", "has no §"),
        ("tests/no_such_test.py checks it", "does not exist"),
    ],
)
def test_the_scan_catches_each_kind_of_fault(tmp_path: Path, line: str, problem: str) -> None:
    """The checker itself: each fault in a file of a tree is reported with its file and line."""
    probe = tmp_path / "docs" / "probe.md"
    probe.parent.mkdir()
    probe.write_text(f"first line\n{line}\n", encoding="utf-8")
    faults = citation_faults([probe], root=tmp_path)
    assert len(faults) == 1 and faults[0].startswith("docs/probe.md:2:") and problem in faults[0], faults


def test_good_citations_pass(tmp_path: Path) -> None:
    probe = tmp_path / "note.md"
    probe.write_text("docs/ARCHITECTURE.md §6, docs/release_format.md §0/§9 and avflow_cli/synth.py\n",
                     encoding="utf-8")
    (tmp_path / "avflow_cli").mkdir()
    (tmp_path / "avflow_cli" / "synth.py").write_text("", encoding="utf-8")
    assert citation_faults([probe], root=tmp_path) == []
