"""Fragments of a job killed with ``kill -9`` (a ``.tmp.h5`` shard, a demo corpus ``.tmp`` folder)
are gone after the next successful run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

# A writer that dies by SIGKILL in the middle of an atomic write: no cleanup code can run.
_KILLED_WRITER = """
import os, signal, sys
from pathlib import Path
from avflow_cli.fsutil import atomic_dir, atomic_path
target, kind = Path(sys.argv[1]), sys.argv[2]
if kind == "file":
    with atomic_path(target) as tmp:
        tmp.write_bytes(b"half a shard")
        os.kill(os.getpid(), signal.SIGKILL)
else:
    with atomic_dir(target, kind="demo-corpus", force=True) as tmp:
        (tmp / "session_000").mkdir()
        os.kill(os.getpid(), signal.SIGKILL)
"""


def _killed_while_writing(target: Path, kind: str) -> list[str]:
    res = subprocess.run([sys.executable, "-c", _KILLED_WRITER, str(target), kind],
                         env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True)
    assert res.returncode == -9, res.stderr
    left = sorted(p.name for p in target.parent.iterdir() if ".tmp" in p.name)
    assert left, "the killed writer should have left its temporary behind"
    return left


def test_shard_fragment_is_removed_by_the_next_write(tmp_path: Path) -> None:
    from avflow_cli.data.shards import write_shard

    shards = tmp_path / "shards"
    shards.mkdir()
    _killed_while_writing(shards / "shard-00000.h5", "file")
    frames = 10
    clip = {"mel": np.zeros((frames, 80), np.float32), "tokens": np.zeros((frames, 29), np.float32),
            "face": np.zeros((frames, 4), np.float32), "head": np.zeros((frames, 8), np.float32),
            "head_pose": np.zeros((frames, 7), np.float32), "valid": np.ones(frames, bool)}
    write_shard(shards / "shard-00000.h5", {"c0": clip})
    assert sorted(p.name for p in shards.iterdir()) == ["shard-00000.h5"]


def test_demo_corpus_tmp_folder_is_removed_by_the_next_run(tmp_path: Path) -> None:
    from avflow_cli.data.demo_corpus import MIN_SESSION_SECONDS, generate_corpus

    out = tmp_path / "corpus"
    _killed_while_writing(out, "dir")
    generate_corpus(out, minutes=MIN_SESSION_SECONDS / 60.0, seed=0, show_progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus"]


def test_demo_corpus_rejects_unusable_seed_and_size(tmp_path: Path) -> None:
    import pytest

    from avflow_cli.data.demo_corpus import generate_corpus
    from avflow_cli.errors import AvflowError

    for kwargs, message in (({"seed": -1}, "--seed must be between 0"), ({"size": 10**20}, "--size must be between 32")):
        with pytest.raises(AvflowError, match=message):
            generate_corpus(tmp_path / "corpus", minutes=0.2, show_progress=False, **kwargs)
    assert not (tmp_path / "corpus").exists()
