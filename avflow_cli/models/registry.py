"""Model directories (docs/ARCHITECTURE.md §4): ``config.json`` + ``model.safetensors``, written and loaded here.

``config.json``::

    {"format": "avflow-model", "format_version": 1, "kind": "avflow"|"headvae"|"t2t",
     "preset": "tiny"|"base"|"release"|..., "model": {...asdict(config)...},
     "normalization": {...} | null, "avflow_version": "0.1.0",
     "components": {"head_vae": "../headvae", ...}, "train": {...} (runs only)}

:func:`load_model` is ``avflow_cli.load_model`` and the one loader of every kind: it rebuilds the
network from the config and loads the weights strictly, with one-line errors for a missing file, a
different architecture (key or shape mismatch) or a newer format. ``load_head_vae`` and
``load_t2t`` are it with the kind fixed.

This module is a leaf of ``models/``: it imports no network module. :data:`KIND_CLASSES` names,
per kind, the network class and its config dataclass, imported by name when a model of that kind
is built — so no network module imports this one (callers load through it), and there is no
cycle (``tests/test_layering.py`` counts those by-name imports).
"""

from __future__ import annotations

import json
from dataclasses import fields, is_dataclass
from importlib import import_module
from pathlib import Path
from typing import Any

import torch
from torch import nn

from avflow_cli import __version__
from avflow_cli import constants as K
from avflow_cli.errors import AvflowError, InputFileError
from avflow_cli.fsutil import atomic_path, ensure_writable_dir
from avflow_cli.jsonfile import read_json
from avflow_cli.models.config import dataclass_from_dict, to_json_dict
from avflow_cli.weights import load_safetensors, save_safetensors, state_dict_mismatch

CONFIG_NAME = "config.json"
WEIGHTS_NAME = K.WEIGHTS_NAME
MODEL_FORMAT = "avflow-model"
FORMAT_VERSION = 1
# kind -> ("module:network class", "module:config dataclass", what it is, in words)
KIND_CLASSES: dict[str, tuple[str, str, str]] = {
    "avflow": ("avflow_cli.models.avflow:AVFlow", "avflow_cli.models.config:AVFlowConfig", "an AV-Flow model"),
    "headvae": ("avflow_cli.models.headvae:HeadVAE", "avflow_cli.models.config:HeadVAEConfig", "a head-pose VAE"),
    "t2t": ("avflow_cli.models.text2tokens.model:TextToTokens", "avflow_cli.models.text2tokens.config:T2TConfig",
            "a text-to-tokens model"),
}
KINDS = tuple(KIND_CLASSES)


def _by_name(ref: str) -> Any:
    module, name = ref.split(":")
    return getattr(import_module(module), name)


def _plain(obj: Any) -> Any:
    return to_json_dict(obj) if is_dataclass(obj) else obj


def write_config(
    model_dir: str | Path,
    kind: str,
    config: Any,
    normalization: dict[str, Any] | None = None,
    *,
    preset: str | None = None,
    components: dict[str, str] | None = None,
    train: Any = None,
) -> Path:
    """Write ``config.json`` atomically (a run writes it once, checkpoints only touch weights)."""
    if kind not in KINDS:
        raise ValueError(f"unknown model kind {kind!r}")
    obj = {
        "format": MODEL_FORMAT,
        "format_version": FORMAT_VERSION,
        "kind": kind,
        "preset": preset,
        "model": _plain(config),
        "normalization": normalization,
        "avflow_version": __version__,
        "components": dict(components or {}),
    }
    if train is not None:
        obj["train"] = _plain(train)
    path = ensure_writable_dir(model_dir) / CONFIG_NAME
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=1))
    return path


def set_model_field(model_dir: str | Path, name: str, value: Any) -> Path:
    """Change one field of ``model`` in a model directory's config.json (atomically), e.g. a
    value measured after training; the field must exist in the kind's config class."""
    obj = read_config(model_dir)
    if name not in {f.name for f in fields(_by_name(KIND_CLASSES[obj["kind"]][1]))}:
        raise ValueError(f"{model_dir}: a {obj['kind']} model has no field {name!r}")
    obj["model"][name] = _plain(value)
    path = Path(model_dir) / CONFIG_NAME
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=1))
    return path


def save_weights(model_dir: str | Path, state_dict: dict[str, torch.Tensor], name: str = WEIGHTS_NAME) -> Path:
    """Write a state dict as safetensors, atomically (the one writer: :func:`avflow_cli.weights.save_safetensors`)."""
    path = ensure_writable_dir(model_dir) / name
    return save_safetensors(path, state_dict, {"format": MODEL_FORMAT, "avflow_version": __version__})


def save_model_dir(
    model_dir: str | Path,
    kind: str,
    config: Any,
    state_dict: dict[str, torch.Tensor],
    normalization: dict[str, Any] | None = None,
    *,
    preset: str | None = None,
    components: dict[str, str] | None = None,
    train: Any = None,
) -> Path:
    """Write a complete model directory (config first, then weights; each file atomic)."""
    write_config(model_dir, kind, config, normalization, preset=preset, components=components, train=train)
    save_weights(model_dir, state_dict)
    return Path(model_dir)


def read_config(model_dir: str | Path) -> dict[str, Any]:
    """Parse and check ``config.json`` of a model directory."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise InputFileError(model_dir, "model directory not found")
    path = model_dir / CONFIG_NAME
    if not path.is_file():
        raise InputFileError(path, "missing; not an avflow model directory (train one or `avflow import release`)")
    obj = read_json(path)
    if obj.get("format") != MODEL_FORMAT:
        raise InputFileError(path, f"not an avflow model config (format={obj.get('format')!r})")
    if int(obj.get("format_version", 0)) > FORMAT_VERSION:
        raise InputFileError(path, f"format version {obj['format_version']} is newer than this avflow "
                                   f"({__version__}) supports; upgrade avflow")
    if obj.get("kind") not in KINDS:
        raise InputFileError(path, f"unknown model kind {obj.get('kind')!r}")
    return obj


def build_model(obj: dict[str, Any], source: str = "config.json") -> nn.Module:
    """An untrained network for a parsed ``config.json`` (an AV-Flow model with its normaliser)."""
    network, config, _ = KIND_CLASSES[obj["kind"]]
    model = _by_name(network)(dataclass_from_dict(_by_name(config), obj["model"], f"{source} model"))
    if obj["kind"] == "avflow" and obj.get("normalization"):
        from avflow_cli.models.normalize import Normalizer

        model.normalizer = Normalizer.from_json(obj["normalization"])
    return model


def check_state_dict(model: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Strict key/shape comparison with a one-line, specific error."""
    problem = state_dict_mismatch(model, state)
    if problem:
        raise AvflowError(f"{source}: weights are for a different architecture than the config: {problem}")


def load_model(model_dir: str | Path, device: str | torch.device = "cpu", kind: str | None = None) -> nn.Module:
    """A ready model (eval mode, on ``device``) from a model directory.

    Every module has ``.config``, ``.components`` (name → absolute Path of referenced
    directories), ``.model_dir`` and ``.preset``; an AV-Flow model also ``.normalizer``.
    ``kind`` checks the directory holds that kind of model.
    """
    model_dir = Path(model_dir)
    obj = read_config(model_dir)
    if kind is not None and obj["kind"] != kind:
        raise InputFileError(model_dir, f"holds a {obj['kind']!r} model, expected {kind!r} ({KIND_CLASSES[kind][2]})")
    weights = model_dir / WEIGHTS_NAME
    if not weights.is_file():
        raise InputFileError(weights, "missing; the model directory has a config but no weights")
    model = build_model(obj, str(model_dir / CONFIG_NAME))
    state = load_safetensors(weights, "model weights")
    check_state_dict(model, state, str(weights))
    model.load_state_dict(state, strict=True)
    model.components = {k: (model_dir / v).resolve() for k, v in (obj.get("components") or {}).items()}
    model.model_dir = model_dir.resolve()
    model.preset = obj.get("preset")
    return model.to(device).eval()


def load_head_vae(model_dir: str | Path, device: str | torch.device = "cpu") -> nn.Module:
    """A head-pose VAE (kind "headvae") in eval mode: :func:`load_model` with the kind fixed."""
    return load_model(model_dir, device, kind="headvae")


def load_t2t(model_dir: str | Path, device: str | torch.device = "cpu") -> nn.Module:
    """A text-to-tokens model (kind "t2t") in eval mode, with ``.synthesize(text, …)``."""
    return load_model(model_dir, device, kind="t2t")
