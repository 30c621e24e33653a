"""Model and training configurations: small dataclasses, named presets, overrides, JSON round trip.

Presets (docs/ARCHITECTURE.md §2, docs/release_format.md §0/§9):
- ``tiny``: a few-hundred-k-parameter network for CPU demos and tests.
- ``base``: the paper (2 × 8 blocks, width 512, MLP 1024, 4 heads, window 7 past + self + 2 future,
  20 s segments, 8 Euler steps).
- ``release``: the authors' code (16 past / 8 future, 345-frame segments, 16 steps, the release's
  normalisation); its checkpoint loads into this preset through ``convert_release``.

A preset is a dict of the fields it changes (here and in :mod:`avflow_cli.models.text2tokens.config`).
Overrides come from ``--set key=value`` (``model.d_model=128`` or an unambiguous bare
``d_model=128``) and from a TOML or YAML file ``{model: {...}, train: {...}}`` — a path, or the
name of a config shipped in ``avflow_cli/configs`` (``--config dyadic``). Every config dataclass
is saved with :func:`to_json_dict` into ``config.json`` and read back with
:func:`dataclass_from_dict`, never as pickled objects.
"""

from __future__ import annotations

import json
import tomllib
from importlib import resources
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, get_origin, get_type_hints

from avflow_cli import constants as K
from avflow_cli.checks import TEMPERATURE_MAX, check_temperature, check_token_gain  # noqa: F401  (imported from here too)
from avflow_cli.errors import AvflowError, InputFileError

ATTN_BLOCK = 32  # default query block of the banded attention: 3–5 % faster per CPU step than 64

PRESETS = ("tiny", "small", "base", "release")
FUSION_VARIANTS = ("highway", "separate", "shared", "cascade")
NORMALIZATION_KINDS = ("stats", "release")
RELEASE_TOKEN_SOURCE = "wav2vec2 (wav2vec2_asr_base_960h)"  # the authors' models read Wav2Vec2 ASR logits
PACKAGED_CONFIGS = "avflow_cli.configs"  # package of the shipped *.toml configs (``--config dyadic``)


# ---------------------------------------------------------------------------------------------
# AV-Flow network
# ---------------------------------------------------------------------------------------------
@dataclass
class AVFlowConfig:
    """Architecture of the AV-Flow network (and the sampler defaults that belong to it)."""

    face_dim: int = K.CODEC_FACE_CODE_DIM
    head_dim: int = K.HEAD_LATENT_DIM
    mel_dim: int = K.N_MELS
    token_dim: int = K.TOKEN_DIM
    participant_tokens: bool = False  # guidance: participant tokens (29) join cond
    participant_visual_dim: int = 0  # guidance: participant SMIRK dims (0 off, 56 paper, 58 release)
    d_model: int = 512
    hidden_dim: int = 1024
    heads: int = 4
    depth: int = 8  # blocks per stack
    window_left: int = 7  # past frames each query sees
    window_right: int = 2  # future frames each query sees
    rope_base: float = 10000.0
    # flow time t ∈ [0, 1] is multiplied by this before the Fourier features; 1.0 (the release, and
    # every config.json written before the field existed) leaves most features constant
    time_scale: float = 1.0
    attn_block: int = ATTN_BLOCK  # query block of the banded attention (speed only; any value is exact)
    fusion: str = "highway"  # highway | separate | shared | cascade
    guidance_dropout: float = 0.3  # training: probability of zeroing all guidance channels
    steps: int = 8  # Euler steps at sampling
    # scale of the starting noise at sampling: below 1 trades variety for clarity, as Grad-TTS and
    # Matcha-TTS sample (docs/quality.md measures it); 1.0 is the plain flow and every older config
    temperature: float = 1.0
    # the avatar's normalised tokens are multiplied by this before the network reads them (sampling
    # only; training always reads them as they are): above 1, a model trained on minutes of one real
    # voice follows its tokens more clearly (docs/quality.md "Token gain"); 1.0 is every older config
    token_gain: float = 1.0
    normalization: str = "stats"  # stats (from the shards) | release (the authors' constants)
    # tokens the model was trained on (data/token_source.py), set from the shards; "" = unknown
    token_source: str = ""
    # what made the participant's face features (index.json extractors["p_smirk"]), set from the
    # shards with visual guidance; Synthesizer.prepare_participant extracts a user's face the same way
    participant_face_source: str = ""

    @property
    def visual_dim(self) -> int:
        return self.face_dim + self.head_dim

    @property
    def x_dim(self) -> int:
        return self.face_dim + self.head_dim + self.mel_dim

    @property
    def guidance_dim(self) -> int:
        return (self.token_dim if self.participant_tokens else 0) + self.participant_visual_dim

    @property
    def cond_dim(self) -> int:
        return self.token_dim + self.guidance_dim

    def validate(self) -> "AVFlowConfig":
        for name in ("face_dim", "head_dim", "mel_dim", "token_dim", "d_model", "hidden_dim", "heads", "depth", "steps"):
            if getattr(self, name) < 1:
                raise AvflowError(f"model.{name} must be at least 1, got {getattr(self, name)}")
        if self.participant_visual_dim < 0:
            raise AvflowError(f"model.participant_visual_dim must be 0 or more, got {self.participant_visual_dim}")
        if self.fusion not in FUSION_VARIANTS:
            raise AvflowError(f"model.fusion must be one of {FUSION_VARIANTS}, got {self.fusion!r}")
        if self.normalization not in NORMALIZATION_KINDS:
            raise AvflowError(f"model.normalization must be one of {NORMALIZATION_KINDS}, got {self.normalization!r}")
        if self.d_model % self.heads or (self.d_model // self.heads) % 2:
            raise AvflowError(f"model.d_model={self.d_model} must split into {self.heads} heads of even size")
        if min(self.window_left, self.window_right) < 0 or self.attn_block < 1 or self.depth < 1:
            raise AvflowError("model.window_left/window_right must be >= 0, attn_block and depth >= 1")
        if not self.time_scale > 0:
            raise AvflowError(f"model.time_scale must be positive, got {self.time_scale}")
        check_temperature(self.temperature, "model.temperature")
        check_token_gain(self.token_gain, "model.token_gain")
        if not 0.0 <= self.guidance_dropout <= 1.0:
            raise AvflowError("model.guidance_dropout must be in [0, 1]")
        return self


@dataclass
class HeadVAEConfig:
    """Head-pose VAE (docs/release_format.md §4): per-frame 7 → 8, one transformer encoder layer each side."""

    input_dim: int = K.HEAD_POSE_DIM
    latent_dim: int = K.HEAD_LATENT_DIM
    hidden: int = 16
    layers: int = 1
    heads: int = 1
    ff_dim: int = 2048  # PyTorch's TransformerEncoderLayer default, as in the release
    dropout: float = 0.1
    kld_weight: float = 1e-4
    smooth_weight: float = 0.0  # optional: L1 of the latent mean's frame-to-frame change
    # z-score of the raw pose [qw qx qy qz tx ty tz]; filled from the shards or the release stats
    pose_mean: list[float] = field(default_factory=lambda: [0.0] * K.HEAD_POSE_DIM)
    pose_std: list[float] = field(default_factory=lambda: [1.0] * K.HEAD_POSE_DIM)
    encode_chunk: int = K.RELEASE_SEGMENT_FRAMES  # frames per attention window when encoding long clips

    def validate(self) -> "HeadVAEConfig":
        for name in ("input_dim", "latent_dim", "hidden", "layers", "heads", "ff_dim", "encode_chunk"):
            if getattr(self, name) < 1:
                raise AvflowError(f"model.{name} must be at least 1, got {getattr(self, name)}")
        if not 0.0 <= self.dropout < 1.0:
            raise AvflowError(f"model.dropout must be in [0, 1), got {self.dropout}")
        if len(self.pose_mean) != self.input_dim or len(self.pose_std) != self.input_dim:
            raise AvflowError(f"head VAE pose_mean/pose_std must have {self.input_dim} values")
        if self.hidden % self.heads:
            raise AvflowError("head VAE hidden must be divisible by heads")
        return self


# ---------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------
@dataclass
class TrainConfig:
    """Optimiser, schedule, data windows, logging and hardware options of one training run."""

    steps: int = 100_000
    batch_size: int = 16
    segment_frames: int = K.SEGMENT_FRAMES
    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.98)
    eps: float = 1e-9
    weight_decay: float = 0.0
    warmup_steps: int = 1000
    lr_schedule: str = "constant"  # constant (the paper) | cosine (decays to lr_final·lr at `steps`)
    lr_final: float = 0.1
    grad_clip: float = 1.0  # 0 disables
    ema_decay: float = 0.999
    ema_start: int = 0  # EMA copies the weights until this step
    sigma_min: float = 1e-6
    lambda_mel: float = 3.0
    lambda_face: float = 1.0
    lambda_head: float = 0.2
    seed: int = 0
    num_workers: int = 0
    log_every: int = 10
    val_every: int = 1000
    val_windows: int = 16
    sample_every: int = 5000
    sample_frames: int = 344  # ≈ 4 s drawn as images
    ckpt_every: int = 1000
    bf16: bool = False
    compile: bool = False
    # a trained AV-Flow model directory whose weights start the run (`avflow train avflow --init`:
    # fine-tuning, e.g. the demo model to a new voice; train/avflow.py); "" = random weights
    init: str = ""


PRESET_MODEL: dict[str, dict[str, Any]] = {
    "tiny": dict(d_model=96, hidden_dim=192, heads=4, depth=3, window_left=7, window_right=2, steps=8, time_scale=1000.0),
    # the demo model: the largest network that learns speech in CPU hours (docs/quality.md)
    "small": dict(d_model=192, hidden_dim=384, heads=4, depth=4, window_left=8, window_right=4, steps=8, time_scale=1000.0),
    "base": dict(time_scale=1000.0),
    "release": dict(window_left=16, window_right=8, steps=16, normalization="release", guidance_dropout=0.0,
                    token_source=RELEASE_TOKEN_SOURCE),
}
PRESET_TRAIN: dict[str, dict[str, Any]] = {
    "tiny": dict(
        steps=2000, batch_size=8, segment_frames=172, lr=1e-3, warmup_steps=50, ema_decay=0.99, log_every=10,
        val_every=200, val_windows=8, sample_every=500, sample_frames=172, ckpt_every=200,
    ),
    "small": dict(
        steps=8000, batch_size=8, segment_frames=172, lr=1e-3, warmup_steps=100, ema_decay=0.995, log_every=10,
        val_every=500, val_windows=8, sample_every=2000, sample_frames=172, ckpt_every=250,
    ),
    "base": dict(),
    "release": dict(segment_frames=K.RELEASE_SEGMENT_FRAMES, warmup_steps=0, grad_clip=0.0),
}
PRESET_HEADVAE_TRAIN: dict[str, dict[str, Any]] = {
    "tiny": dict(steps=600, batch_size=16, segment_frames=172, lr=1e-3, warmup_steps=20, ema_decay=0.99, val_every=100,
                 val_windows=8, sample_every=300, sample_frames=172, ckpt_every=100),
    "small": dict(steps=600, batch_size=16, segment_frames=172, lr=1e-3, warmup_steps=20, ema_decay=0.99, val_every=100,
                  val_windows=8, sample_every=300, sample_frames=172, ckpt_every=100),
    "base": dict(steps=50_000, batch_size=64, segment_frames=K.RELEASE_SEGMENT_FRAMES, lr=1e-3, warmup_steps=500),
    "release": dict(steps=500_000, batch_size=64, segment_frames=K.RELEASE_SEGMENT_FRAMES, warmup_steps=0),
}
PRESET_HEADVAE: dict[str, dict[str, Any]] = {"tiny": dict(ff_dim=64), "small": dict(ff_dim=64), "base": dict(), "release": dict()}


def _check_preset(name: str) -> None:
    if name not in PRESETS:
        raise AvflowError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")


def avflow_preset(name: str) -> tuple[AVFlowConfig, TrainConfig]:
    """The model and training configuration of a named preset."""
    _check_preset(name)
    return AVFlowConfig(**PRESET_MODEL[name]), TrainConfig(**PRESET_TRAIN[name])


def headvae_preset(name: str) -> tuple[HeadVAEConfig, TrainConfig]:
    """The head-VAE model and training configuration of a named preset."""
    _check_preset(name)
    return HeadVAEConfig(**PRESET_HEADVAE[name]), TrainConfig(**PRESET_HEADVAE_TRAIN[name])


# ---------------------------------------------------------------------------------------------
# Overrides
# ---------------------------------------------------------------------------------------------
def _coerce(value: Any, current: Any, key: str) -> Any:
    """Turn a CLI string (or file value) into the type of the field it replaces."""
    if isinstance(current, bool):
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        raise AvflowError(f"{key}: expected true/false, got {value!r}")
    try:
        if isinstance(current, int):
            return int(value)
        if isinstance(current, float):
            return float(value)
        if isinstance(current, (tuple, list)):
            items = value if isinstance(value, (list, tuple)) else str(value).strip("()[] ").split(",")
            elem = current[0] if current else 0.0
            out = [_coerce(v, elem, key) for v in items]
            return tuple(out) if isinstance(current, tuple) else out
    except (TypeError, ValueError) as err:
        raise AvflowError(f"{key}: cannot use {value!r} ({err})") from err
    return str(value)


def apply_overrides(sections: dict[str, Any], overrides: dict[str, Any]) -> None:
    """Set fields in place. ``sections`` maps a name ("model", "train") to a dataclass.

    Keys are ``section.field`` or a bare ``field`` that exists in exactly one section.
    """
    for key, value in overrides.items():
        if "." in key:
            sec, name = key.split(".", 1)
            if sec not in sections:
                raise AvflowError(f"--set {key}: unknown section {sec!r} (choose {', '.join(sections)})")
            targets = [sections[sec]]
        else:
            name = key
            targets = [obj for obj in sections.values() if name in {f.name for f in fields(obj)}]
            if len(targets) > 1:
                raise AvflowError(f"--set {key}: ambiguous, write one of {[f'{s}.{key}' for s in sections]}")
        if not targets or name not in {f.name for f in fields(targets[0])}:
            known = sorted(f"{s}.{f.name}" for s, o in sections.items() for f in fields(o))
            raise AvflowError(f"--set {key}: no such setting; known: {', '.join(known)}")
        obj = targets[0]
        setattr(obj, name, _coerce(value, getattr(obj, name), key))


def parse_set_options(items: list[str] | None) -> dict[str, str]:
    """``["a=1", "model.b=x"]`` → ``{"a": "1", "model.b": "x"}`` with a clear error on bad syntax."""
    out: dict[str, str] = {}
    for item in items or []:
        if "=" not in item:
            raise AvflowError(f"--set {item!r}: expected key=value")
        key, value = item.split("=", 1)
        out[key.strip()] = value.strip()
    return out


def packaged_configs() -> list[str]:
    """Names of the configs shipped in ``avflow_cli/configs`` (``dyadic``, ``release_dyadic``, …)."""
    root = resources.files(PACKAGED_CONFIGS)
    return sorted(p.name[: -len(".toml")] for p in root.iterdir() if p.name.endswith(".toml"))


def _read_config_text(path: Path) -> tuple[Path, str]:
    """(the file, its text): a file on disk, or a bare name (no folder, no suffix) of a packaged config."""
    if path.is_file():
        return path, path.read_text()
    if not path.suffix and len(path.parts) == 1:
        shipped = resources.files(PACKAGED_CONFIGS) / f"{path.name}.toml"
        if shipped.is_file():
            return Path(f"{path.name}.toml"), shipped.read_text()
        raise InputFileError(path, f"no such config file, and no packaged config of that name "
                                   f"(packaged: {', '.join(packaged_configs())})")
    raise InputFileError(path, "config file not found")


def load_override_file(path: str | Path) -> dict[str, Any]:
    """Read a TOML or YAML file — or a packaged config by name, e.g. ``dyadic`` — into flat
    ``section.field`` overrides."""
    path, text = _read_config_text(Path(path))
    try:
        if path.suffix.lower() == ".toml":
            data = tomllib.loads(text)
        elif path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text) or {}
        elif path.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            raise InputFileError(path, "config file must end in .toml, .yaml, .yml or .json")
    except (tomllib.TOMLDecodeError, ValueError) as err:
        raise InputFileError(path, f"cannot parse ({err})") from err
    except Exception as err:  # yaml.YAMLError without importing yaml at module level
        if type(err).__module__.startswith("yaml"):
            raise InputFileError(path, f"cannot parse ({err})") from err
        raise
    if not isinstance(data, dict):
        raise InputFileError(path, "top level must be a table/mapping")
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            flat.update({f"{key}.{k}": v for k, v in value.items()})
        else:
            flat[key] = value
    flat.pop("preset", None)
    return flat


# ---------------------------------------------------------------------------------------------
# JSON round trip: the one idiom of every config dataclass (AV-Flow, head VAE, training, text-to-tokens)
# ---------------------------------------------------------------------------------------------
def dataclass_from_dict(cls: type, data: dict[str, Any], what: str) -> Any:
    """Rebuild a config dataclass from :func:`to_json_dict` output, rejecting unknown fields clearly.

    JSON has no tuples: a list given for a field annotated ``tuple[...]`` becomes a tuple again
    (read from the resolved type hints, so it works with or without postponed annotations).
    """
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise AvflowError(f"{what}: unknown config fields {unknown} (made by a newer avflow?)")
    hints = get_type_hints(cls)
    kwargs = dict(data)
    for name, value in kwargs.items():
        if isinstance(value, list) and get_origin(hints.get(name)) is tuple:
            kwargs[name] = tuple(value)
    return cls(**kwargs)


def to_json_dict(obj: Any) -> dict[str, Any]:
    """``asdict`` with tuples as lists, ready for ``json.dumps``."""
    return json.loads(json.dumps(asdict(obj)))


def resolve_configs(
    model_cfg: Any, train_cfg: Any, config_file: str | Path | None = None, overrides: dict[str, Any] | None = None
) -> tuple[Any, Any, set[str]]:
    """Apply a TOML/YAML file, then ``--set`` overrides (CLI wins); returns the keys that were set."""
    sections = {"model": model_cfg, "train": train_cfg}
    merged: dict[str, Any] = {}
    if config_file:
        merged.update(load_override_file(config_file))
    merged.update(overrides or {})
    apply_overrides(sections, merged)
    touched = set()
    for key in merged:
        if "." in key:
            touched.add(key)
        else:
            touched.update(f"{s}.{key}" for s, o in sections.items() if key in {f.name for f in fields(o)})
    model_cfg.validate()
    return model_cfg, train_cfg, touched
