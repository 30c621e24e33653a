"""Tables of results: the paper's Table 1 layout as Markdown, and loading runs for ``eval compare``."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from avflow_cli.errors import AvflowError, InputFileError
from avflow_cli.jsonfile import read_json

METRICS_NAME = "metrics.json"
METRICS_MD_NAME = "metrics.md"

# (key in metrics.json "metrics", column header, higher is better?)
TABLE_COLUMNS: tuple[tuple[str, str, bool], ...] = (
    ("F1_lips", "F1 lips", True),
    ("F1_smiles", "F1 smiles", True),
    ("FD_e", "FD_e", False),
    ("Div_e", "Div_e", True),
    ("Div_h", "Div_h", True),
    ("BC_e", "BC_e", True),
    ("BC_h", "BC_h", True),
    ("MCD", "MCD", False),
    ("WER", "WER", False),
)


def header(key: str) -> str:
    """Column header with the paper's arrow (↑ higher is better, ↓ lower)."""
    for k, title, higher in TABLE_COLUMNS:
        if k == key:
            return f"{title} {'↑' if higher else '↓'}"
    return key


def fmt(value: Any, key: str = "", compact: bool = False) -> str:
    """A table cell: 3 decimals (2 for MCD/FD), '–' for missing/NaN; ``compact`` keeps it ≤ 6 chars."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, (bool, int)) or (isinstance(value, float) and value.is_integer() and abs(value) >= 100):
        return str(int(value))
    if isinstance(value, float):
        mag = abs(value)
        if compact and mag >= 1e4:
            exp = int(math.floor(math.log10(mag)))
            return f"{value / 10**exp:.1f}e{exp}"
        if mag >= 100:
            return f"{value:.0f}"
        if mag >= 10 or key in ("MCD", "FD_e", "Div_h"):
            return f"{value:.2f}"
        return f"{value:.3f}"
    return str(value)


def table_rows(results: list[dict[str, Any]], *, ground_truth: bool = True, compact: bool = False) -> list[list[str]]:
    """One row per run (name first), plus a ground-truth row per distinct test set when asked."""
    rows = []
    for res in results:
        rows.append([res.get("name", "?")] + [fmt(res["metrics"].get(k), k, compact) for k, _, _ in TABLE_COLUMNS])
    if ground_truth:
        seen = set()
        for res in results:
            key = (res.get("truth"), res.get("split"))
            if key in seen or not res.get("ground_truth"):
                continue
            seen.add(key)
            gt = res["ground_truth"]
            rows.append(["ground truth"] + [fmt(gt.get(k), k, compact) for k, _, _ in TABLE_COLUMNS])
    return rows


def markdown_table(results: list[dict[str, Any]], *, ground_truth: bool = True) -> str:
    """The Table 1 layout as a Markdown table."""
    cols = ["run"] + [header(k) for k, _, _ in TABLE_COLUMNS]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(row) + " |" for row in table_rows(results, ground_truth=ground_truth)]
    return "\n".join(lines)


def metrics_markdown(result: dict[str, Any]) -> str:
    """The whole ``metrics.md``: table, settings, speed, and where each number comes from."""
    s = result.get("settings", {})
    lines = [
        f"# avflow eval: {result.get('name')}",
        "",
        f"Split `{result.get('split')}` of `{result.get('truth')}`: {result.get('clips')} clips scored"
        + (f", {result['missing_clips']} without generated output" if result.get("missing_clips") else "")
        + f"; source: {result.get('source')}.",
        "",
        markdown_table([result]),
        "",
        "The ground-truth row scores the test set itself (diversity, beat alignment and WER of the",
        "real data through the same ASR); FD, F1 and MCD compare against it, so they have no entry.",
        "",
        "## Settings",
        "",
    ]
    lines += [f"- {k}: `{v}`" for k, v in s.items()]
    speed = result.get("speed") or {}
    if speed:
        lines += ["", "## Speed (seconds to generate 20 s)", "", f"Source: {result.get('speed_source', '-')}.", "",
                  "| stage | seconds |", "|---|---|"]
        lines += [f"| {k} | {v:.3f} |" for k, v in speed.items() if isinstance(v, (int, float))]
    extra = result.get("extra") or {}
    if extra:
        lines += ["", "## More numbers", ""]
        lines += [f"- {k}: {fmt(v, k)}" for k, v in extra.items()]
    lines += ["", f"Metric definitions: `avflow_cli/metrics/` (docstrings) and `avflow eval --help`.", ""]
    return "\n".join(lines)


def find_metrics(path: str | Path, split: str = "test") -> Path:
    """``metrics.json`` for a path given to ``eval compare``: the file, an eval folder, or a run."""
    path = Path(path)
    candidates = [path] if path.suffix == ".json" else [
        path / METRICS_NAME,
        path / "eval" / split / METRICS_NAME,
        path / "eval" / f"{split}-text" / METRICS_NAME,
    ]
    for c in candidates:
        if c.is_file():
            return c
    raise AvflowError(f"{path}: no {METRICS_NAME} found (run `avflow eval` on it first)")


def load_result(path: str | Path, split: str = "test") -> dict[str, Any]:
    """A run's metrics.json as a dict, checked for the fields the tables need."""
    mpath = find_metrics(path, split)
    obj = read_json(mpath)
    if not isinstance(obj, dict) or "metrics" not in obj:
        raise InputFileError(mpath, "not an avflow metrics.json (no 'metrics')")
    return obj
