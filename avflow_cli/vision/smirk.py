"""SMIRK face encoder (Retsinas et al., CVPR 2024) and per-frame participant features.

Facts from georgeretsi/smirk (commit c7de404), written here without its code or ``timm``:

* ``src/smirk_encoder.py``: three independent encoders on the same 224 × 224 RGB crop in
  [0, 1] (no mean/std normalisation; ``demo.py`` divides by 255):
  - ``pose_encoder``: timm ``tf_mobilenetv3_small_minimal_100`` (features_only; last feature map
    576 channels) → global average pool → ``pose_cam_layers.0`` Linear(576, 6) →
    pose (3, FLAME global rotation, axis-angle) | cam (3: scale, tx, ty).
  - ``shape_encoder``: ``tf_mobilenetv3_large_minimal_100`` (960 channels) →
    ``shape_layers.0`` Linear(960, 300) → FLAME shape.
  - ``expression_encoder``: same backbone → ``expression_layers.0`` Linear(960, 55) →
    expression [0:50] | eyelids [50:52] clamped to [0, 1] | jaw [52:55] as
    (relu(p52), clamp(p53, ±0.2), clamp(p54, ±0.2)).
* ``src/base_trainer.py:save_model`` saves a plain ``torch.save`` dict holding only keys that
  start with ``smirk_encoder.`` or ``smirk_generator.``; the released file is
  ``pretrained_models/SMIRK_em1.pt`` (``quick_install.sh``, Google-Drive id
  1T65uEd9dVLHgVw5KiUYL66NUee-MCzoE). ``demo.py`` keeps the ``smirk_encoder.`` keys, strips
  the prefix and loads them strictly. The generator is not needed for features.

The backbone follows timm 0.9.16 (the version SMIRK pins), ``MobileNetV3Features`` built by
``_gen_mobilenet_v3`` for the "minimal" variants: ReLU everywhere, no squeeze-excitation,
3 × 3 depthwise kernels, BatchNorm eps 1e-3 and TensorFlow "SAME" padding (the ``tf_``
prefix: static symmetric padding for stride 1, dynamic asymmetric padding for stride 2).
State-dict keys below one encoder's ``encoder.`` prefix::

    conv_stem.weight                 [16, 3, 3, 3]     stride 2, SAME, no bias
    bn1.{weight,bias,running_mean,running_var,num_batches_tracked}
    blocks.{s}.{b}.conv_dw/bn1/conv_pw/bn2        depthwise-separable block ("ds")
    blocks.{s}.{b}.conv_pw/bn1/conv_dw/bn2/conv_pwl/bn3   inverted residual ("ir")
    blocks.{s}.0.conv/bn1                          final 1 × 1 conv block ("cn")

Features: ``paper`` (56) = [expression 50 | jaw 3 | head rotation 3] (AV-Flow paper);
``release`` (58) = [expression 50 | jaw 3 | eyelids 2 | head rotation 3]. The release's two
participant files (``--expression.npy`` + ``--headpose.npy``) concatenate to 58 values whose
split is not stated anywhere (docs/release_format.md §7); this layout is our assumption, chosen so its
first 53 values equal the paper layout's.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from avflow_cli.constants import (
    RELEASE_SMIRK_DIM,
    SMIRK_DIM,
    SMIRK_EXPRESSION_DIM,
    SMIRK_JAW_DIM,
    SMIRK_ROTATION_DIM,
)
from avflow_cli.device import resolve_device
from avflow_cli.errors import AvflowError, InputFileError
from avflow_cli.gaps import fill_linear
from avflow_cli.weights import state_dict_mismatch

SMIRK_INPUT_SIZE = 224  # crop side the encoders were trained on
SMIRK_SHAPE_DIM = 300
SMIRK_EYELID_DIM = 2
SMIRK_CAM_DIM = 3
CHECKPOINT_PREFIX = "smirk_encoder."  # key prefix in SMIRK_em1.pt
BN_EPS_TF = 1e-3  # timm BN_EPS_TF_DEFAULT, used by the tf_ variants
JAW_SIDE_LIMIT = 0.2  # |jaw rotation about the 2nd/3rd axis| clamp in SMIRK's expression head

FeatureLayout = Literal["paper", "release"]
FEATURE_DIMS: dict[str, int] = {"paper": SMIRK_DIM, "release": RELEASE_SMIRK_DIM}

# (block type, kernel, stride, expansion ratio, out channels) per stage; timm arch strings
# 'ds_r1_k3_s1_e1_c16' etc. with repeats written out (only the first block of a stage strides).
_LARGE_MINIMAL: tuple[tuple[tuple[str, int, int, float, int], ...], ...] = (
    (("ds", 3, 1, 1.0, 16),),
    (("ir", 3, 2, 4.0, 24), ("ir", 3, 1, 3.0, 24)),
    (("ir", 3, 2, 3.0, 40),) + (("ir", 3, 1, 3.0, 40),) * 2,
    (("ir", 3, 2, 6.0, 80), ("ir", 3, 1, 2.5, 80), ("ir", 3, 1, 2.3, 80), ("ir", 3, 1, 2.3, 80)),
    (("ir", 3, 1, 6.0, 112),) * 2,
    (("ir", 3, 2, 6.0, 160),) + (("ir", 3, 1, 6.0, 160),) * 2,
    (("cn", 1, 1, 1.0, 960),),
)
_SMALL_MINIMAL: tuple[tuple[tuple[str, int, int, float, int], ...], ...] = (
    (("ds", 3, 2, 1.0, 16),),
    (("ir", 3, 2, 4.5, 24), ("ir", 3, 1, 3.67, 24)),
    (("ir", 3, 2, 4.0, 40),) + (("ir", 3, 1, 6.0, 40),) * 2,
    (("ir", 3, 1, 3.0, 48),) * 2,
    (("ir", 3, 2, 6.0, 96),) + (("ir", 3, 1, 6.0, 96),) * 2,
    (("cn", 1, 1, 1.0, 576),),
)
BACKBONES = {"large_minimal": _LARGE_MINIMAL, "small_minimal": _SMALL_MINIMAL}


# --- backbone: MobileNetV3 "minimal" (timm tf_mobilenetv3_*_minimal_100, features_only) -------
def make_divisible(value: float, divisor: int = 8, round_limit: float = 0.9) -> int:
    """Round channels to a multiple of ``divisor`` without going more than 10 % down (timm)."""
    new = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return new + divisor if new < round_limit * value else new


class SameConv2d(nn.Conv2d):
    """Conv2d with TensorFlow 'SAME' padding: asymmetric, computed from the input size.

    Used for strided convolutions; its parameters and state-dict keys are nn.Conv2d's.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size, k, s, d in zip(x.shape[-2:], self.kernel_size, self.stride, self.dilation):
            total = max((math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size, 0)
            pads.append((total // 2, total - total // 2))
        (top, bottom), (left, right) = pads
        x = F.pad(x, (left, right, top, bottom))  # (B, C, H + pad, W + pad)
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def _conv(cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1) -> nn.Conv2d:
    """Bias-free conv with TF 'SAME' padding: static for stride 1, dynamic otherwise."""
    if stride == 1:
        return nn.Conv2d(cin, cout, kernel, stride, padding=(kernel - 1) // 2, groups=groups, bias=False)
    return SameConv2d(cin, cout, kernel, stride, padding=0, groups=groups, bias=False)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS_TF)


class DepthwiseSeparable(nn.Module):
    """dw k×k conv → BN → ReLU → pw 1×1 conv → BN (no activation), residual when shapes allow."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int) -> None:
        super().__init__()
        self.conv_dw = _conv(cin, cin, kernel, stride, groups=cin)
        self.bn1 = _bn(cin)
        self.conv_pw = _conv(cin, cout, 1)
        self.bn2 = _bn(cout)
        self.has_skip = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv_dw(x)))  # (B, Cin, H', W')
        y = self.bn2(self.conv_pw(y))  # (B, Cout, H', W')
        return y + x if self.has_skip else y


class InvertedResidual(nn.Module):
    """pw expand → BN → ReLU → dw k×k → BN → ReLU → pw project → BN, residual when shapes allow."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expansion: float) -> None:
        super().__init__()
        mid = make_divisible(cin * expansion)
        self.conv_pw = _conv(cin, mid, 1)
        self.bn1 = _bn(mid)
        self.conv_dw = _conv(mid, mid, kernel, stride, groups=mid)
        self.bn2 = _bn(mid)
        self.conv_pwl = _conv(mid, cout, 1)
        self.bn3 = _bn(cout)
        self.has_skip = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv_pw(x)))  # (B, mid, H, W)
        y = F.relu(self.bn2(self.conv_dw(y)))  # (B, mid, H', W')
        y = self.bn3(self.conv_pwl(y))  # (B, Cout, H', W')
        return y + x if self.has_skip else y


class ConvBnAct(nn.Module):
    """k×k conv → BN → ReLU (the final 1×1 'cn' block)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int) -> None:
        super().__init__()
        self.conv = _conv(cin, cout, kernel, stride)
        self.bn1 = _bn(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn1(self.conv(x)))  # (B, Cout, H, W)


class MobileNetV3Minimal(nn.Module):
    """Feature extractor returning the last feature map (B, C_out, H/32, W/32)."""

    def __init__(self, variant: str) -> None:
        super().__init__()
        if variant not in BACKBONES:
            raise ValueError(f"unknown backbone {variant!r}; known: {', '.join(BACKBONES)}")
        self.conv_stem = _conv(3, 16, 3, stride=2)
        self.bn1 = _bn(16)
        stages, cin = [], 16
        for stage in BACKBONES[variant]:
            blocks: list[nn.Module] = []
            for kind, kernel, stride, expansion, cout in stage:
                if kind == "ds":
                    blocks.append(DepthwiseSeparable(cin, cout, kernel, stride))
                elif kind == "ir":
                    blocks.append(InvertedResidual(cin, cout, kernel, stride, expansion))
                else:
                    blocks.append(ConvBnAct(cin, cout, kernel, stride))
                cin = cout
            stages.append(nn.Sequential(*blocks))
        self.blocks = nn.Sequential(*stages)
        self.num_features = cin

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv_stem(x)))  # (B, 16, H/2, W/2)
        return self.blocks(x)  # (B, C_out, H/32, W/32)


def _pooled(features: torch.Tensor) -> torch.Tensor:
    return features.mean(dim=(2, 3))  # (B, C)


# --- the three encoders -----------------------------------------------------------------------
class PoseEncoder(nn.Module):
    """Head rotation (axis-angle, 3) and weak-perspective camera (3) from the small backbone."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = MobileNetV3Minimal("small_minimal")
        self.pose_cam_layers = nn.Sequential(nn.Linear(self.encoder.num_features, SMIRK_ROTATION_DIM + SMIRK_CAM_DIM))

    def forward(self, img: torch.Tensor) -> dict[str, torch.Tensor]:
        out = self.pose_cam_layers(_pooled(self.encoder(img)))  # (B, 6)
        return {"pose_params": out[:, :SMIRK_ROTATION_DIM], "cam": out[:, SMIRK_ROTATION_DIM:]}


class ShapeEncoder(nn.Module):
    """FLAME shape coefficients from the large backbone."""

    def __init__(self, n_shape: int = SMIRK_SHAPE_DIM) -> None:
        super().__init__()
        self.encoder = MobileNetV3Minimal("large_minimal")
        self.shape_layers = nn.Sequential(nn.Linear(self.encoder.num_features, n_shape))

    def forward(self, img: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"shape_params": self.shape_layers(_pooled(self.encoder(img)))}  # (B, n_shape)


class ExpressionEncoder(nn.Module):
    """FLAME expression, eyelid closure and jaw rotation from the large backbone."""

    def __init__(self, n_exp: int = SMIRK_EXPRESSION_DIM) -> None:
        super().__init__()
        self.n_exp = n_exp
        self.encoder = MobileNetV3Minimal("large_minimal")
        self.expression_layers = nn.Sequential(
            nn.Linear(self.encoder.num_features, n_exp + SMIRK_EYELID_DIM + SMIRK_JAW_DIM)
        )

    def forward(self, img: torch.Tensor) -> dict[str, torch.Tensor]:
        p = self.expression_layers(_pooled(self.encoder(img)))  # (B, n_exp + 5)
        n = self.n_exp
        jaw = torch.cat(
            [F.relu(p[:, n + 2 : n + 3]), p[:, n + 3 : n + 5].clamp(-JAW_SIDE_LIMIT, JAW_SIDE_LIMIT)], dim=1
        )  # (B, 3)
        return {
            "expression_params": p[:, :n],  # (B, n_exp)
            "eyelid_params": p[:, n : n + 2].clamp(0.0, 1.0),  # (B, 2)
            "jaw_params": jaw,
        }


class SmirkEncoder(nn.Module):
    """The three encoders; ``forward`` returns SMIRK's output dictionary."""

    def __init__(self, n_exp: int = SMIRK_EXPRESSION_DIM, n_shape: int = SMIRK_SHAPE_DIM) -> None:
        super().__init__()
        self.pose_encoder = PoseEncoder()
        self.shape_encoder = ShapeEncoder(n_shape)
        self.expression_encoder = ExpressionEncoder(n_exp)

    def forward(self, img: torch.Tensor, *, with_shape: bool = True) -> dict[str, torch.Tensor]:
        """img (B, 3, 224, 224) RGB in [0, 1] → dict of (B, ·) parameter tensors."""
        out = {**self.pose_encoder(img), **self.expression_encoder(img)}
        if with_shape:
            out.update(self.shape_encoder(img))
        return out


# --- checkpoint I/O ---------------------------------------------------------------------------
def release_state_dict(encoder: SmirkEncoder) -> dict[str, torch.Tensor]:
    """The encoder's weights keyed as in SMIRK's released checkpoint (``smirk_encoder.`` prefix)."""
    return {CHECKPOINT_PREFIX + k: v.detach().cpu() for k, v in encoder.state_dict().items()}


def _encoder_weights(raw: object, path: Path) -> dict[str, torch.Tensor]:
    """Pick the encoder's tensors from a loaded file: SMIRK's release dict or a bare encoder dict."""
    if not isinstance(raw, Mapping):
        raise InputFileError(path, f"not a SMIRK checkpoint (holds a {type(raw).__name__}, expected a state dict)")
    for wrapper in ("state_dict", "model_state_dict"):
        if wrapper in raw and isinstance(raw[wrapper], Mapping):
            raw = raw[wrapper]
    tensors = {k: v for k, v in raw.items() if isinstance(k, str) and isinstance(v, torch.Tensor)}
    prefixed = {k[len(CHECKPOINT_PREFIX) :]: v for k, v in tensors.items() if k.startswith(CHECKPOINT_PREFIX)}
    if prefixed:
        return prefixed
    bare = {k: v for k, v in tensors.items() if k.split(".")[0] in ("pose_encoder", "shape_encoder", "expression_encoder")}
    if bare:
        return bare
    sample = ", ".join(list(tensors)[:3]) or "no tensors"
    raise InputFileError(path, f"no SMIRK encoder weights (expected keys 'smirk_encoder.*'; found {sample})")


def load_smirk_encoder(path: str | Path, device: str | torch.device = "cpu") -> SmirkEncoder:
    """Load SMIRK's released encoder (``SMIRK_em1.pt``) strictly, in eval mode on ``device``.

    Raises InputFileError for a missing, truncated or non-PyTorch file and for weights of
    another architecture (naming the first missing/unexpected/mis-shaped key).
    """
    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, "SMIRK checkpoint not found")
    from avflow_cli.torchfile import load_torch_file

    raw = load_torch_file(path, "SMIRK checkpoint")  # weights only: never runs code
    weights = _encoder_weights(raw, path)
    n_exp = n_shape = None
    if "expression_encoder.expression_layers.0.weight" in weights:
        n_exp = int(weights["expression_encoder.expression_layers.0.weight"].shape[0]) - SMIRK_EYELID_DIM - SMIRK_JAW_DIM
    if "shape_encoder.shape_layers.0.weight" in weights:
        n_shape = int(weights["shape_encoder.shape_layers.0.weight"].shape[0])
    model = SmirkEncoder(
        n_exp=n_exp if n_exp and n_exp > 0 else SMIRK_EXPRESSION_DIM,
        n_shape=n_shape if n_shape and n_shape > 0 else SMIRK_SHAPE_DIM,
    )
    problem = state_dict_mismatch(model, weights)
    if problem is not None:
        raise InputFileError(path, f"weights do not fit the SMIRK encoder architecture: {problem}")
    model.load_state_dict(weights, strict=True)
    return model.to(resolve_device(device)).eval()


# --- features ---------------------------------------------------------------------------------
def smirk_features(outputs: Mapping[str, torch.Tensor], layout: FeatureLayout = "paper") -> torch.Tensor:
    """Per-frame feature vectors from SMIRK outputs: (B, 56) ``paper`` or (B, 58) ``release``."""
    expr = outputs["expression_params"][:, :SMIRK_EXPRESSION_DIM]  # (B, 50)
    if outputs["expression_params"].shape[1] != SMIRK_EXPRESSION_DIM:
        raise AvflowError(
            f"features need a SMIRK model with {SMIRK_EXPRESSION_DIM} expression parameters, "
            f"this one has {outputs['expression_params'].shape[1]}"
        )
    jaw, rot = outputs["jaw_params"], outputs["pose_params"]  # (B, 3), (B, 3)
    if layout == "paper":
        return torch.cat([expr, jaw, rot], dim=1)  # (B, 56)
    if layout == "release":
        return torch.cat([expr, jaw, outputs["eyelid_params"], rot], dim=1)  # (B, 58)
    raise AvflowError(f"unknown SMIRK feature layout {layout!r}; use 'paper' (56) or 'release' (58)")


def crops_to_tensor(crops: np.ndarray, device: torch.device) -> torch.Tensor:
    """uint8 RGB crops (B, S, S, 3) → float (B, 3, S, S) in [0, 1], as SMIRK's demo feeds them."""
    x = torch.from_numpy(np.ascontiguousarray(crops)).to(device)  # (B, S, S, 3)
    return x.permute(0, 3, 1, 2).float().div_(255.0)  # (B, 3, S, S)


def axis_angle_to_rotmat(rotvec: np.ndarray) -> np.ndarray:
    """Rodrigues: axis-angle vectors (N, 3) (SMIRK/FLAME global pose) → rotation matrices (N, 3, 3)."""
    v = np.asarray(rotvec, dtype=np.float64)
    theta = np.linalg.norm(v, axis=1)  # (N,)
    axis = v / np.maximum(theta, 1e-12)[:, None]  # (N, 3)
    x, y, z = axis.T
    zero = np.zeros_like(x)
    k = np.stack([zero, -z, y, z, zero, -x, -y, x, zero], axis=1).reshape(-1, 3, 3)  # (N, 3, 3)
    s, c = np.sin(theta)[:, None, None], np.cos(theta)[:, None, None]
    return np.eye(3)[None] + s * k + (1.0 - c) * (k @ k)  # (N, 3, 3)


def extract_smirk_features(
    video_path: str | Path,
    checkpoint: str | Path,
    device: str | torch.device = "cpu",
    batch: int = 32,
    *,
    fps: float | None = None,
    layout: FeatureLayout = "paper",
    crop_scale: float | None = None,
    show_progress: bool = True,
) -> tuple[np.ndarray, np.ndarray, float]:
    """SMIRK features of every frame of a video, streamed in batches.

    Returns (features (N, 56|58) float32, valid (N,) bool, fps). Frames where no face was found
    are invalid and hold zeros. ``fps`` resamples the video to that constant rate first.
    """
    from avflow_cli.console import progress
    from avflow_cli.vision.face_detect import DEFAULT_CROP_SCALE, face_crops
    from avflow_cli.vision.video import iter_frames, probe_video

    if layout not in FEATURE_DIMS:
        raise AvflowError(f"unknown SMIRK feature layout {layout!r}; use 'paper' (56) or 'release' (58)")
    dev = resolve_device(device)
    model = load_smirk_encoder(checkpoint, dev)
    info = probe_video(video_path)
    rate = float(fps) if fps is not None else info.fps
    total = int(round(info.duration * rate)) if info.duration > 0 else info.num_frames
    feats: list[np.ndarray] = []
    valids: list[np.ndarray] = []
    crops_iter = face_crops(
        iter_frames(info.path, batch=batch, fps=fps, info=info),
        size=SMIRK_INPUT_SIZE,
        scale=DEFAULT_CROP_SCALE if crop_scale is None else crop_scale,
    )
    with progress(transient=not show_progress) as bar:
        task = bar.add_task(f"SMIRK {info.path.name}", total=total or None, status="")
        for crops, valid in crops_iter:
            out = np.zeros((len(crops), FEATURE_DIMS[layout]), dtype=np.float32)  # (B, D)
            if valid.any():
                with torch.inference_mode():
                    params = model(crops_to_tensor(crops[valid], dev), with_shape=False)
                    out[valid] = smirk_features(params, layout).float().cpu().numpy()
            feats.append(out)
            valids.append(valid)
            bar.update(task, advance=len(crops), status=f"faces {int(sum(v.sum() for v in valids))}")
    if not feats:
        raise InputFileError(info.path, "no frames decoded")
    return np.concatenate(feats), np.concatenate(valids), rate


def smirk_sidecar_paths(out: str | Path) -> tuple[Path, Path]:
    """(valid mask, metadata) paths written beside a features file: NAME.valid.npy, NAME.json."""
    out = Path(out)
    return out.with_name(f"{out.stem}.valid.npy"), out.with_suffix(".json")


def write_smirk_features(
    video: str | Path,
    out: str | Path,
    checkpoint: str | Path,
    *,
    device: str = "cpu",
    batch: int = 32,
    fps: float | None = None,
    layout: FeatureLayout = "paper",
    crop_scale: float | None = None,
    force: bool = False,
) -> dict[str, object]:
    """``avflow prep smirk``: features of ``video`` into ``out`` (.npy) with a mask and metadata.

    ``out`` holds (N, 56|58) float32 with faceless frames interpolated from their neighbours
    (so the stream can be resampled); ``NAME.valid.npy`` says which frames had a face and
    ``NAME.json`` records fps, layout, checkpoint and counts. An existing ``out`` is kept
    unless ``force``. Raises InputFileError when no frame has a face.
    """
    import json

    from avflow_cli.fsutil import atomic_path

    out = Path(out)
    if out.suffix != ".npy":
        raise AvflowError(f"{out}: the output must be a .npy file")
    valid_path, meta_path = smirk_sidecar_paths(out)
    if out.is_file() and meta_path.is_file() and not force:
        return {"skipped": True, **json.loads(meta_path.read_text())}
    feats, valid, rate = extract_smirk_features(
        video, checkpoint, device, batch, fps=fps, layout=layout, crop_scale=crop_scale
    )
    if not valid.any():
        raise InputFileError(video, f"no face found in any of its {len(valid)} frames")
    meta: dict[str, object] = {
        "video": str(Path(video).resolve()),
        "fps": rate,
        "layout": layout,
        "dim": int(feats.shape[1]),
        "frames": int(len(feats)),
        "valid_frames": int(valid.sum()),
        "checkpoint": str(Path(checkpoint).resolve()),
        "detector": "OpenCV Haar frontal face (largest face, EMA-smoothed box)",
    }
    with atomic_path(out) as tmp:
        np.save(tmp, fill_linear(feats, valid))
    with atomic_path(valid_path) as tmp:
        np.save(tmp, valid)
    with atomic_path(meta_path) as tmp:  # written last: marks the work finished
        tmp.write_text(json.dumps(meta, indent=1))
    return {"skipped": False, **meta}
