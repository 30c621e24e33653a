"""Start an AV-Flow run from a trained model's weights (``avflow train avflow --init MODEL``).

Why: a network that already maps tokens to speech (the demo model, 30 minutes of flite
sentences) needs fewer steps on a new voice: on the real voice it reached in 4000 steps a
validation loss that random weights did not reach in 14000, though the transcripts were no better
(docs/quality.md, "Real voice"). Fine-tuning keeps the
init model's architecture (``--set`` may still change sampling settings such as the temperature),
its token kind (the shards must hold the same kind of tokens, or the token embedding means
nothing) and its weights for the model and the EMA; everything learnt from data is the new
run's own: the normalisation statistics of the new shards, the optimiser state, the schedule.
The init directory is recorded as ``train.init`` in the run's ``config.json``; a resumed run
takes its weights from its checkpoint, so the init folder is not needed again.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Callable

import torch

from avflow_cli.data.token_source import compatible, shard_token_source
from avflow_cli.errors import AvflowError, InputFileError
from avflow_cli.models.config import AVFlowConfig, dataclass_from_dict


def resolve_init(init: str | Path) -> Path:
    """The AV-Flow directory ``init`` names: a model directory or a shipped model's name."""
    from avflow_cli.shipped import resolve_model

    return resolve_model(init, option="--init").resolve()


def init_model_config(init_dir: str | Path) -> AVFlowConfig:
    """The architecture (model table) of the AV-Flow model in ``init_dir``; one line if it is not one."""
    from avflow_cli.models.registry import CONFIG_NAME, WEIGHTS_NAME, read_config

    init_dir = Path(init_dir)
    obj = read_config(init_dir)
    if obj["kind"] != "avflow":
        raise InputFileError(init_dir, f"holds a {obj['kind']!r} model; --init needs an AV-Flow model directory")
    if not (init_dir / WEIGHTS_NAME).is_file():
        raise InputFileError(init_dir / WEIGHTS_NAME, "missing; --init needs the model's weights")
    return dataclass_from_dict(AVFlowConfig, obj["model"], str(init_dir / CONFIG_NAME))


def init_preset(start: AVFlowConfig, preset_fn: Callable[[str], tuple[Any, Any]]) -> Callable[[str], tuple[Any, Any]]:
    """A preset function whose model table is ``start`` (the init's) and whose train table is the preset's."""
    return lambda preset: (copy.deepcopy(start), preset_fn(preset)[1])


def check_init_tokens(start: AVFlowConfig, index: Any, shard_dir: str | Path, init_dir: str | Path) -> None:
    """Refuse shards whose tokens are of another kind than the init model was trained on."""
    shards = shard_token_source(index)
    if not compatible(start.token_source, shards):
        raise AvflowError(f"--init {init_dir} was trained on {start.token_source} tokens but {shard_dir} holds "
                          f"{shards} tokens; prep the shards with the init model's token source")


def load_init_weights(model: torch.nn.Module, init_dir: str | Path) -> None:
    """Copy the init model's (EMA) weights into ``model``; one line when the architectures differ."""
    from avflow_cli.models.registry import WEIGHTS_NAME, check_state_dict
    from avflow_cli.weights import load_safetensors

    path = Path(init_dir) / WEIGHTS_NAME
    state = load_safetensors(path, "model weights")
    check_state_dict(model, state, f"--init {path} (a --set changed the architecture?)")
    model.load_state_dict(state, strict=True)
