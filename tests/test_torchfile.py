"""No PyTorch file avflow reads can run code: every loader refuses a hostile pickle in one line."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from avflow_cli.errors import AvflowError, InputFileError
from avflow_cli.torchfile import load_torch_file


class _Hostile:
    """Unpickling this calls ``open(path, "w")``, i.e. it creates a file (a stand-in for any code)."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self) -> tuple:
        return (open, (self.path, "w"))


def _loaders() -> dict[str, Callable[[Path], Any]]:
    from avflow_cli.audio.asr_tokens import read_state
    from avflow_cli.audio.hifigan import read_generator_state
    from avflow_cli.models.convert_release import _load_pt
    from avflow_cli.models.text2tokens.convert import _read_state
    from avflow_cli.render.decoder import load_release_decoder
    from avflow_cli.train.common import RunDir, load_checkpoint
    from avflow_cli.vision.smirk import load_smirk_encoder

    def train_state(path: Path) -> Any:
        path.rename(path.with_name("train_state.pt"))
        return load_checkpoint(RunDir(path.parent), "avflow")

    return {"generic": load_torch_file, "wav2vec2": read_state, "hifigan": read_generator_state, "release": _load_pt,
            "t2t": _read_state, "render": load_release_decoder, "smirk": load_smirk_encoder, "train_state": train_state}


@pytest.mark.parametrize("name", list(_loaders()))
def test_hostile_pickle_is_refused_in_one_line(name: str, tmp_path: Path) -> None:
    created = tmp_path / "created-by-the-pickle"
    path = tmp_path / "weights.pt"
    torch.save({"generator": {"w": _Hostile(created)}, "format": 2, "kind": "avflow"}, path)
    with pytest.raises(InputFileError) as info:
        _loaders()[name](path)
    message = str(info.value)
    assert not created.exists()
    assert "refused" in message and "\n" not in message
    assert "weights_only" not in message and "trust" not in message  # never torch's advice to load it unsafely


@pytest.mark.parametrize("content, message", [(b"", "truncated or corrupt"), (b"\x80\x04junk" * 10, "truncated or corrupt")],
                         ids=["empty", "junk"])
def test_broken_file_is_one_line(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "broken.pt"
    path.write_bytes(content)
    with pytest.raises(InputFileError, match=message) as info:
        load_torch_file(path)
    assert "\n" not in str(info.value) and "weights_only" not in str(info.value)
    with pytest.raises(AvflowError, match="weights.pt: vocoder checkpoint not found"):
        load_torch_file(tmp_path / "weights.pt", "vocoder checkpoint")


def test_plain_weights_load(tmp_path: Path) -> None:
    path = tmp_path / "ok.pt"
    torch.save({"w": torch.ones(2), "meta": {"steps": 3, "names": ["a"]}}, path)
    obj = load_torch_file(path)
    assert obj["meta"] == {"steps": 3, "names": ["a"]} and torch.equal(obj["w"], torch.ones(2))
