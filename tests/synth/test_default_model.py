"""Which model a command uses (issue 22): --model, else $AVFLOW_MODEL, else the best shipped model.

A model directory in the working tree (`make demo`'s demo_out/models/avflow) never takes over
silently; every command that takes a model accepts the shipped names; a named model that is not
there is one line and exit 2. The shipped folders are replaced by a tiny random family here
(``shipped.RESOURCES`` points at a temporary folder) so the tests stay fast.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from avflow_cli import constants as K
from avflow_cli import shipped
from avflow_cli.cli.main import app
from avflow_cli.errors import AvflowError
from avflow_cli.synth import Synthesizer


@pytest.fixture
def fake_resources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_avatar_model: Path) -> Path:
    """A resources folder shipping `pretrained` (the tiny family) and not `real-voice`."""
    root = tmp_path / "resources"
    root.mkdir()
    (root / shipped.SHIPPED_MODELS["pretrained"]).symlink_to(tiny_avatar_model.parent, target_is_directory=True)
    monkeypatch.setattr(shipped, "RESOURCES", root)
    monkeypatch.delenv(shipped.MODEL_ENV, raising=False)
    return root


@pytest.fixture
def demo_built(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_avatar_model: Path) -> Path:
    """A working directory where `make demo` has left its own model (a copy of the tiny family)."""
    work = tmp_path / "work"
    models = (work / K.DEMO_MODEL_DIR).parent
    shutil.copytree(tiny_avatar_model.parent, models)
    monkeypatch.chdir(work)
    return work / K.DEMO_MODEL_DIR


def test_default_is_the_shipped_model_even_after_make_demo(fake_resources: Path, demo_built: Path) -> None:
    choice = shipped.choose_model(None)
    assert choice.name == "pretrained" and choice.source == "default"
    assert choice.path == fake_resources / "pretrained_demo" / "avflow"
    assert choice.path.resolve() != demo_built.resolve()  # the working tree's model is not picked up
    named = shipped.choose_model(K.DEMO_MODEL_DIR)  # ... only when named
    assert named.path == Path(K.DEMO_MODEL_DIR) and named.source == "--model" and named.name is None


def test_synthesizer_default_loads_the_shipped_family(fake_resources: Path, demo_built: Path) -> None:
    synth = Synthesizer(device="cpu", vocoder="griffinlim")
    assert synth.model_dir == fake_resources / "pretrained_demo" / "avflow"
    assert synth.t2t_dir == (fake_resources / "pretrained_demo" / "t2t").resolve()
    assert synth.choice.origin() == "shipped pretrained, default"


def test_environment_variable_chooses_and_option_wins(fake_resources: Path, demo_built: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(shipped.MODEL_ENV, str(demo_built))
    choice = shipped.choose_model(None)
    assert choice.path == demo_built and choice.source == "$AVFLOW_MODEL"
    assert shipped.choose_model("pretrained").name == "pretrained"  # --model beats the variable
    monkeypatch.setenv(shipped.MODEL_ENV, "pretrained")  # a shipped name works there too
    assert shipped.choose_model(None).name == "pretrained"
    monkeypatch.setenv(shipped.MODEL_ENV, "   ")  # set but blank: as if unset
    assert shipped.choose_model(None).source == "default"


def test_shipped_name_beats_a_folder_of_that_name_unless_written_as_a_path(fake_resources: Path, demo_built: Path) -> None:
    shutil.copytree(demo_built.parent, Path("pretrained"))
    assert shipped.choose_model("pretrained").name == "pretrained"
    local = shipped.choose_model("./pretrained/avflow")
    assert local.name is None and local.path == Path("pretrained/avflow")


def test_refusals_are_one_line(fake_resources: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(AvflowError, match=r"^--model real-voice: not shipped in this version"):
        shipped.choose_model("real-voice")
    with pytest.raises(AvflowError, match="no AV-Flow model here"):
        shipped.choose_model(tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    with pytest.raises(AvflowError, match="not a model directory: config.json missing"):
        shipped.choose_model(tmp_path / "empty")
    monkeypatch.setenv(shipped.MODEL_ENV, str(tmp_path / "absent"))
    with pytest.raises(AvflowError, match=rf"^AVFLOW_MODEL={tmp_path / 'absent'}: no AV-Flow model here"):
        shipped.choose_model(None)
    with pytest.raises(AvflowError, match=r"^--gta-model nowhere"):
        shipped.resolve_model("nowhere", option="--gta-model")


def test_pretrained_missing_is_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shipped, "RESOURCES", tmp_path)
    monkeypatch.delenv(shipped.MODEL_ENV, raising=False)
    with pytest.raises(AvflowError, match="pretrained: not shipped in this version"):
        Synthesizer(device="cpu")


def test_shipped_name_of_recognises_package_folders(fake_resources: Path, tmp_path: Path) -> None:
    assert shipped.shipped_name_of(fake_resources / "pretrained_demo" / "avflow") == "pretrained"
    assert shipped.shipped_name_of(tmp_path) is None
    assert set(shipped.shipped_names()) == {"pretrained", "real-voice"}


runner = CliRunner()


@pytest.mark.parametrize("command", [["synth", "hello", "-o", "OUT"], ["converse", "DIALOGUE", "-o", "OUT"],
                                     ["eval", "--data", "DATA"], ["serve", "--port", "0"]])
def test_every_model_command_refuses_a_missing_model_in_one_line(command: list[str], fake_resources: Path,
                                                                 tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dialogue = tmp_path / "d.toml"
    dialogue.write_text('[[turns]]\navatar = "Hi."\n')
    args = [{"OUT": str(tmp_path / "out"), "DIALOGUE": str(dialogue), "DATA": str(tmp_path)}.get(a, a) for a in command]
    args += ["--jobs", str(tmp_path / "jobs")] if command[0] == "serve" else []
    for extra, env, said in ((["--model", "real-voice"], None, "--model real-voice: not shipped in this version"),
                             (["--model", str(tmp_path / "nothing")], None, "no AV-Flow model here"),
                             ([], str(tmp_path / "nothing"), "AVFLOW_MODEL=")):
        if command[0] == "eval" and not extra:
            continue  # eval needs --model or --from-dir named: it never generates with a default
        if env is None:
            monkeypatch.delenv(shipped.MODEL_ENV, raising=False)
        else:
            monkeypatch.setenv(shipped.MODEL_ENV, env)
        result = runner.invoke(app, args + extra)
        assert result.exit_code == 2, (args + extra, result.output)
        assert said in result.output and "Traceback" not in result.output
        assert len(result.output.strip().splitlines()) == 1, result.output
        assert not (tmp_path / "out").exists() and not (tmp_path / "jobs").exists()


def test_eval_accepts_shipped_names(fake_resources: Path, tmp_path: Path) -> None:
    """`avflow eval --model pretrained` passes the model check (it was "not a model directory") and
    stops at the missing shards; the package folder gets no eval/ output."""
    result = runner.invoke(app, ["eval", "--model", "pretrained", "--data", str(tmp_path / "no_shards")])
    assert result.exit_code == 2 and "not a model directory" not in result.output
    assert "no_shards" in result.output
    assert not (fake_resources / "pretrained_demo" / "avflow" / "eval").exists()


@pytest.mark.parametrize("command", ["synth", "converse", "serve", "eval"])
def test_help_names_the_environment_variable_and_shipped_names(command: str) -> None:
    result = runner.invoke(app, [command, "--help"], env={"COLUMNS": "400"})
    assert result.exit_code == 0
    flat = " ".join(result.output.replace("│", " ").split())
    assert "pretrained" in flat and "real-voice" in flat
    if command != "eval":
        assert "$AVFLOW_MODEL" in flat and K.DEMO_MODEL_DIR in flat


def test_an_incomplete_named_model_is_one_line(fake_resources: Path, tmp_path: Path, tiny_avatar_model: Path) -> None:
    """A folder with config.json but no weights: refused in one line, nothing written."""
    incomplete = tmp_path / "incomplete"
    incomplete.mkdir()
    shutil.copy(tiny_avatar_model / "config.json", incomplete / "config.json")
    result = runner.invoke(app, ["synth", "hi", "-o", str(tmp_path / "out"), "--model", str(incomplete)])
    assert result.exit_code == 2 and "no weights" in result.output
    assert len(result.output.strip().splitlines()) == 1 and not (tmp_path / "out").exists()
