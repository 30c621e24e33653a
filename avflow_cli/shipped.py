"""What ships inside the package, and which model a command uses: the one answer to "where is the pretrained X".

Shipped models are named on every command that takes a model (``--model pretrained``,
``--model real-voice``); each name is a folder of ``avflow_cli/resources/`` in the layout of
``resources/pretrained_demo/`` (``avflow/``, ``t2t/``, ``headvae/``, a README with sha256 of
every file). Which model a command uses when none is named (issue 22):

1. ``--model NAME|DIR`` (a shipped name, or a model directory);
2. else ``$AVFLOW_MODEL`` (the same values), set by a user on purpose;
3. else :data:`DEFAULT_MODEL`, the best model that ships.

A model directory in the working tree (``demo_out/models/avflow`` after ``make demo``) never
takes over silently: it is used only when named. The package's other shipped folder (the student
vocoder) is found here too, so no module computes a path into ``resources/`` of its own. Parts
that come from elsewhere (the user's checkpoint folders, other wheels such as pocketsphinx's
model and dictionary) are :mod:`avflow_cli.checkpoints`' to find. A leaf module: it imports only
other leaves.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from avflow_cli import constants as K
from avflow_cli.errors import AvflowError

MODEL_ENV = "AVFLOW_MODEL"  # a path or a shipped name: the model used when --model is not given
RESOURCES = Path(__file__).resolve().parent / "resources"  # package data (pyproject's package-data)
# shipped name → folder under RESOURCES; a folder may be absent in a version (not shipped yet)
SHIPPED_MODELS: dict[str, str] = {K.PRETRAINED_MODEL: "pretrained_demo", "real-voice": "real_voice"}
DEFAULT_MODEL = K.PRETRAINED_MODEL  # the best shipped model (docs/quality.md); used when nothing is named
AVFLOW_SUBDIR = "avflow"  # a shipped folder's AV-Flow model; its t2t/ and headvae/ are siblings
STUDENT_VOCODER = "vocoder_student"  # the package's student vocoder folder under RESOURCES
README = "README.md"  # every shipped folder's provenance, with the sha256 of each of its other files
# a checksum line of a README: `sha256sum` output, "HASH  path/relative/to/the/folder"
_CHECKSUM_LINE = re.compile(r"^\s*([0-9a-f]{64}) [ *]([^\s`|]+)\s*$")


def shipped_names() -> tuple[str, ...]:
    """Every name ``--model`` accepts besides a path, shipped in this version or not."""
    return tuple(SHIPPED_MODELS)


def is_shipped_name(value: str | Path) -> bool:
    """Whether ``value`` is a shipped model's name (a name wins over a folder of that name: write ``./NAME``)."""
    return str(value) in SHIPPED_MODELS


def shipped_root(name: str) -> Path:
    """The resources folder of shipped model ``name`` (``avflow/``, ``t2t/``, ``headvae/``, README.md); may be absent."""
    if name not in SHIPPED_MODELS:
        raise AvflowError(f"{name!r} is not a shipped model: choose {' or '.join(SHIPPED_MODELS)}, or give a model directory")
    return RESOURCES / SHIPPED_MODELS[name]


def is_shipped(name: str) -> bool:
    """Whether this version ships model ``name`` (its AV-Flow ``config.json`` is present)."""
    return (shipped_root(name) / AVFLOW_SUBDIR / "config.json").is_file()


def shipped_model_dir(name: str, *, said: str | None = None) -> Path:
    """The AV-Flow model directory of shipped model ``name``; one line when this version lacks it
    (``said``: how the user named it, for the message; default ``--model NAME``)."""
    path = shipped_root(name) / AVFLOW_SUBDIR
    if not (path / "config.json").is_file():
        raise AvflowError(f"{said or f'--model {name}'}: not shipped in this version ({shipped_root(name)} is missing)")
    return path


def shipped_name_of(model_dir: str | Path) -> str | None:
    """The shipped name of an AV-Flow directory inside the package, None for any other directory."""
    try:
        resolved = Path(model_dir).resolve()
    except OSError:
        return None
    for name, folder in SHIPPED_MODELS.items():
        if resolved == (RESOURCES / folder / AVFLOW_SUBDIR).resolve():
            return name
    return None


@dataclass(frozen=True)
class ModelChoice:
    """The AV-Flow directory a command uses and why: ``source`` is ``--model``, ``$AVFLOW_MODEL`` or ``default``."""

    path: Path
    source: str
    name: str | None = None  # the shipped name, when one was used

    def origin(self) -> str:
        """For the console, after the path: ``shipped pretrained, default``, ``--model``, ``$AVFLOW_MODEL``."""
        return f"shipped {self.name}, {self.source}" if self.name else self.source


def choose_model(model: str | Path | None = None, *, option: str = "--model") -> ModelChoice:
    """The model a command uses (see the module doc for the order); one line when it is not a model.

    ``option`` names the flag in messages (``--gta-model`` …). The directory must hold a
    ``config.json``; whether its weights load is the loader's to say.
    """
    if model is not None and str(model) != "":
        source, value = option, model
    elif os.environ.get(MODEL_ENV, "").strip():
        source, value = f"${MODEL_ENV}", os.environ[MODEL_ENV].strip()
    else:
        source, value = "default", DEFAULT_MODEL
    if is_shipped_name(value):
        name = str(value)
        return ModelChoice(shipped_model_dir(name, said=_said(source, name)), source, name)
    path = Path(value).expanduser()
    if not path.exists():
        raise AvflowError(f"{_said(source, value)}: no AV-Flow model here (no such directory; the shipped "
                          f"models are {', '.join(SHIPPED_MODELS)})")
    if not (path / "config.json").is_file():
        raise AvflowError(f"{_said(source, value)}: no AV-Flow model here (not a model directory: config.json missing)")
    return ModelChoice(path, source, shipped_name_of(path))


def resolve_model(model: str | Path | None = None, *, option: str = "--model") -> Path:
    """The AV-Flow directory of :func:`choose_model`."""
    return choose_model(model, option=option).path


def _said(source: str, value: str | Path) -> str:
    """How the user wrote the choice, for the first words of an error."""
    return f"{MODEL_ENV}={value}" if source == f"${MODEL_ENV}" else f"{source} {value}" if source != "default" else str(value)


def shipped_folders() -> list[Path]:
    """Every shipped folder of this version: its models and the student vocoder (absent ones left out)."""
    folders = [RESOURCES / folder for folder in SHIPPED_MODELS.values()] + [student_vocoder_dir()]
    return [f for f in folders if f.is_dir()]


def recorded_checksums(folder: str | Path) -> dict[str, str]:
    """``{relative path: sha256}`` from the folder's README (lines as ``sha256sum`` prints them)."""
    readme = Path(folder) / README
    lines = readme.read_text(encoding="utf-8").splitlines() if readme.is_file() else []
    return {m.group(2): m.group(1) for m in map(_CHECKSUM_LINE.match, lines) if m}


def file_sha256(path: str | Path) -> str:
    """sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def checksum_problems(folder: str | Path) -> list[str]:
    """What differs between a shipped folder and the sha256 lines of its README (empty: all match).

    Every file but the README must be listed, and every listed file must exist with that hash:
    the check ``grep -E '^[0-9a-f]{64}  ' README.md | sha256sum -c`` runs by hand.
    """
    folder = Path(folder)
    recorded = recorded_checksums(folder)
    present = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() and p.name != README}
    problems = [f"{folder / name}: not listed in {README}" for name in sorted(present - recorded.keys())]
    problems += [f"{folder / name}: listed in {README}, missing" for name in sorted(recorded.keys() - present)]
    problems += [f"{folder / name}: sha256 differs from {README}" for name in sorted(present & recorded.keys())
                 if file_sha256(folder / name) != recorded[name]]
    return problems


def student_vocoder_dir() -> Path:
    """The package's trained student vocoder (may be absent: then ``--vocoder student`` is an error)."""
    return RESOURCES / STUDENT_VOCODER
