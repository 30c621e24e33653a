"""Every command that takes -o/--out: an existing file of the user's is never overwritten silently."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from avflow_cli.cli.main import app


def test_prep_smirk_never_overwrites_a_users_npy(tmp_path: Path) -> None:
    video = tmp_path / "face.mp4"
    video.write_bytes(b"not decoded: the check comes first")
    for mine in ("face.npy", "face.json"):
        target = tmp_path / mine
        target.write_bytes(b"the user's")
        res = CliRunner().invoke(app, ["prep", "smirk", str(video), "-o", str(tmp_path / "face.npy")])
        lines = [line for line in res.output.splitlines() if line.strip()]
        assert res.exit_code == 2 and len(lines) == 1 and f"{target}: exists" in lines[0], res.output
        assert target.read_bytes() == b"the user's"
        target.unlink()
    np.save(tmp_path / "x.npy", np.zeros(3))
    res = CliRunner().invoke(app, ["prep", "smirk", str(video), "-o", str(tmp_path / "x.npy"), "--force",
                                   "--checkpoint", str(tmp_path / "x.npy")])
    assert res.exit_code == 2 and "which this command reads" in res.output


def test_demo_never_runs_in_a_users_folder(tmp_path: Path) -> None:
    """The demo removes and rewrites its own dialogue/ and stale stage folders: a user's
    project with a dialogue/ of its own must be refused before anything runs."""
    project = tmp_path / "project"
    (project / "dialogue").mkdir(parents=True)
    (project / "dialogue" / "script.toml").write_text("mine")
    res = CliRunner().invoke(app, ["demo", "--out", str(project)])
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert res.exit_code == 2 and len(lines) == 1 and "not an avflow demo's" in lines[0], res.output
    assert (project / "dialogue" / "script.toml").read_text() == "mine"
    assert sorted(p.name for p in project.iterdir()) == ["dialogue"]


def test_demo_resumes_in_its_own_folder_whatever_else_was_added(tmp_path: Path) -> None:
    """An earlier demo's folder (its stage ledger) with an ablation/ beside is still the demo's."""
    from avflow_cli.cli.demo import _check_demo_dir
    from avflow_cli.demo import STAGES_FILE, DemoPaths

    root = tmp_path / "demo_out"
    (root / "ablation").mkdir(parents=True)
    (root / STAGES_FILE).write_text("{}")
    _check_demo_dir(DemoPaths(root))  # accepted: no error
