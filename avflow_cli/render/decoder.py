"""The codec-avatar face decoder: expression code + view direction → mesh geometry and texture.

What the release's decoder computes (facts from facebookresearch/av_flow
``models/decoder/face_vae.py:Decoder`` and ``models/decoder/layers.py``; avflow's code is its
own):

- ``e = LeakyReLU₀.₂(Linear(code))`` (256 → 256); geometry ``= Linear(e)`` (256 → 3V), the
  vertices normalised as ``(v − vert_mean) / vert_std``;
- ``w = LeakyReLU₀.₂(Linear(view))`` (3 → 8); ``s = LeakyReLU₀.₂(Linear([e | w]))`` (264 →
  256·4·4), viewed as a 256-channel 4×4 seed;
- texture: transposed convolutions (kernel 4, stride 2, padding 1) doubling the side each time
  up to 1024², each with an *untied* bias (one value per channel **and pixel**), LeakyReLU₀.₂
  between them, 3 channels at the end;
- warp (same seed from its own Linear): transposed convolutions to a 2-channel 256² field,
  resized bilinearly to the texture size, divided by the texture side and added to the
  identity sampling grid; the texture is resampled through it (``grid_sample``, bilinear,
  zeros outside, ``align_corners=False``);
- then a per-texel bias (3, 1024, 1024) is added and the texture is ``255·(x + 0.5)``.

Every Linear and transposed convolution is *weight-normalised over the whole tensor*:
``weight = v · g / ‖v‖_F`` with ``g`` one value per output unit (the release's
``weight_norm_wrapper(..., v_dim=None)``). The converter below fuses that once.

Audio2Photoreal's ``FaceDecoderFrontal`` (its ``visualize/ca_body/nn/face.py``) is the same
network without the warp branch and with a fixed ``frontal_view`` instead of the camera's
view; :func:`convert_release_decoder` accepts both. The layer widths are read from the file, so
a smaller decoder of the same family (the test fixture) loads through the same code.

Letters: B frames, F code dim, V vertices, S texture side.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from avflow_cli.errors import InputFileError
from avflow_cli.weights import state_dict_mismatch

__all__ = ["DecoderSpec", "CodecFaceDecoder", "convert_release_decoder", "load_release_decoder", "infer_spec"]

SEED_SIDE = 4  # the texture and warp seeds are 4×4 images (face_vae.py: view(-1, 256, 4, 4))
KERNEL, STRIDE, PADDING = 4, 2, 1  # every transposed convolution doubles the side
NEGATIVE_SLOPE = 0.2
# the release module's names → avflow's (prefix of each weight-normalised layer)
_LINEARS = {"encmod.0": "encode", "geommod.0": "geometry", "viewmod.0": "view", "texmod2.0": "tex_seed",
            "warpmod2.0": "warp_seed"}
_BODY_PREFIXES = ("decoder_face.", "model.decoder_face.", "module.decoder_face.")  # Audio2Photoreal body checkpoints


@dataclass(frozen=True)
class DecoderSpec:
    """Layer widths of one decoder (read from its weights; saved in the avatar's config)."""

    code_dim: int  # F, expression code width (256)
    hidden_dim: int  # encoder width (256)
    view_dim: int  # view embedding width (8)
    num_vertices: int  # V (7306 for face_topo_small_neck.obj)
    tex_channels: tuple[int, ...]  # input channels of the seed, then each layer's output (…, 3)
    warp_channels: tuple[int, ...] = ()  # same for the warp branch (…, 2); () = no warp
    fixed_view: tuple[float, float, float] | None = None  # Audio2Photoreal: a constant view

    @property
    def tex_size(self) -> int:
        """S: the texture side (4 · 2^layers)."""
        return SEED_SIDE * 2 ** (len(self.tex_channels) - 1)

    @property
    def warp_size(self) -> int:
        return SEED_SIDE * 2 ** (len(self.warp_channels) - 1) if self.warp_channels else 0

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["tex_channels"], d["warp_channels"] = list(self.tex_channels), list(self.warp_channels)
        d["fixed_view"] = None if self.fixed_view is None else list(self.fixed_view)
        return d

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> DecoderSpec:
        fixed = d.get("fixed_view")
        return cls(
            code_dim=int(d["code_dim"]), hidden_dim=int(d["hidden_dim"]), view_dim=int(d["view_dim"]),
            num_vertices=int(d["num_vertices"]), tex_channels=tuple(int(c) for c in d["tex_channels"]),
            warp_channels=tuple(int(c) for c in d.get("warp_channels", ())),
            fixed_view=None if fixed is None else (float(fixed[0]), float(fixed[1]), float(fixed[2])),
        )


# ---------------------------------------------------------------------------------------------
# The network
# ---------------------------------------------------------------------------------------------
class UntiedConvTranspose2d(nn.Module):
    """Transposed convolution (k4, s2, p1) whose bias has one value per channel and pixel."""

    def __init__(self, cin: int, cout: int, side: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(cin, cout, KERNEL, KERNEL))  # ConvTranspose2d layout
        self.bias = nn.Parameter(torch.zeros(cout, side, side))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, cin, s, s) → (B, cout, 2s, 2s)"""
        return F.conv_transpose2d(x, self.weight, None, STRIDE, PADDING) + self.bias[None]


def _upsampler(channels: tuple[int, ...], untied: bool) -> nn.ModuleList:
    layers = []
    for i, (cin, cout) in enumerate(zip(channels[:-1], channels[1:])):
        side = SEED_SIDE * 2 ** (i + 1)
        layers.append(UntiedConvTranspose2d(cin, cout, side) if untied else nn.ConvTranspose2d(cin, cout, KERNEL, STRIDE, PADDING))
    return nn.ModuleList(layers)


def _run(layers: nn.ModuleList, x: torch.Tensor) -> torch.Tensor:
    """LeakyReLU between layers, none after the last."""
    for i, layer in enumerate(layers):
        x = layer(x)
        if i < len(layers) - 1:
            x = F.leaky_relu(x, NEGATIVE_SLOPE)
    return x


def identity_grid(side: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """Sampling grid that reproduces a side×side image with grid_sample(align_corners=False).

    Texel centres: (2k + 1)/side − 1. shape: (1, side, side, 2) as (x, y).
    """
    c = (torch.arange(side, device=device, dtype=torch.float64) * 2 + 1) / side - 1  # (S,)
    grid = torch.stack(torch.meshgrid(c, c, indexing="xy"), dim=-1)  # (S, S, 2): [..., 0] = x
    return grid[None].to(dtype)


class CodecFaceDecoder(nn.Module):
    """Expression code (B, F) and view direction (B, 3) → geometry and texture (see module doc)."""

    def __init__(self, spec: DecoderSpec) -> None:
        super().__init__()
        self.spec = spec
        seed = spec.tex_channels[0] * SEED_SIDE * SEED_SIDE
        self.encode = nn.Linear(spec.code_dim, spec.hidden_dim)
        self.geometry = nn.Linear(spec.hidden_dim, 3 * spec.num_vertices)
        self.view = nn.Linear(3, spec.view_dim)
        self.tex_seed = nn.Linear(spec.hidden_dim + spec.view_dim, seed)
        self.tex_up = _upsampler(spec.tex_channels, untied=True)
        self.tex_bias = nn.Parameter(torch.zeros(3, spec.tex_size, spec.tex_size))
        if spec.warp_channels:
            self.warp_seed = nn.Linear(spec.hidden_dim + spec.view_dim, spec.warp_channels[0] * SEED_SIDE * SEED_SIDE)
            self.warp_up = _upsampler(spec.warp_channels, untied=False)

    def forward(self, code: torch.Tensor, view: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """code (B, F), view (B, 3) unit vector → {"geom": (B, V, 3) normalised, "tex": (B, 3, S, S) 0..255}."""
        spec = self.spec
        if spec.fixed_view is not None or view is None:
            if spec.fixed_view is None:
                raise ValueError("this decoder needs the view direction")
            view = torch.tensor(spec.fixed_view, dtype=code.dtype, device=code.device).expand(code.shape[0], 3)
        enc = F.leaky_relu(self.encode(code), NEGATIVE_SLOPE)  # (B, H)
        geom = self.geometry(enc).view(code.shape[0], -1, 3)  # (B, V, 3)
        enc_view = torch.cat([enc, F.leaky_relu(self.view(view), NEGATIVE_SLOPE)], dim=1)  # (B, H + 8)
        seed = F.leaky_relu(self.tex_seed(enc_view), NEGATIVE_SLOPE)
        tex = _run(self.tex_up, seed.view(-1, spec.tex_channels[0], SEED_SIDE, SEED_SIDE))  # (B, 3, S, S)
        if spec.warp_channels:
            wseed = F.leaky_relu(self.warp_seed(enc_view), NEGATIVE_SLOPE)
            warp = _run(self.warp_up, wseed.view(-1, spec.warp_channels[0], SEED_SIDE, SEED_SIDE))  # (B, 2, s, s)
            side = spec.tex_size
            warp = F.interpolate(warp, size=(side, side), mode="bilinear", align_corners=False)  # (B, 2, S, S)
            grid = warp.permute(0, 2, 3, 1) / side + identity_grid(side, warp.device, warp.dtype)  # (B, S, S, 2)
            tex = F.grid_sample(tex, grid.clamp(-1e6, 1e6), mode="bilinear", padding_mode="zeros", align_corners=False)
        tex = 255.0 * (tex + self.tex_bias[None] + 0.5)  # (B, 3, S, S)
        return {"geom": geom, "tex": tex}


# ---------------------------------------------------------------------------------------------
# The release's weight files
# ---------------------------------------------------------------------------------------------
def _strip_body_prefix(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Audio2Photoreal body checkpoints hold the face decoder under ``decoder_face.``."""
    for prefix in _BODY_PREFIXES:
        inner = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
        if inner:
            return inner
    return dict(state)


def _wn_pair(state: Mapping[str, torch.Tensor], prefix: str) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(v, g) of a weight-normalised layer, in either key style the release's loader accepts."""
    for v_key, g_key in ((f"{prefix}.weight_v", f"{prefix}.weight_g"), (f"{prefix}.weight", f"{prefix}.g")):
        if v_key in state and g_key in state:
            return state[v_key], state[g_key]
    return None


def _indices(state: Mapping[str, torch.Tensor], module: str) -> list[int]:
    found = set()
    for key in state:
        head = key.split(".")
        if head[0] == module and len(head) >= 3 and head[1].isdigit():
            found.add(int(head[1]))
    return sorted(found)


def infer_spec(state: Mapping[str, torch.Tensor], path: str | Path = "decoder") -> DecoderSpec:
    """Layer widths from tensor shapes (no values are read, so meta tensors work too)."""

    def need(prefix: str) -> tuple[torch.Tensor, torch.Tensor]:
        pair = _wn_pair(state, prefix)
        if pair is None:
            raise InputFileError(path, f"not a codec-avatar face decoder: no weight-normalised layer {prefix!r}")
        return pair

    enc_v, _ = need("encmod.0")
    geom_v, _ = need("geommod.0")
    view_v, _ = need("viewmod.0")
    seed_v, _ = need("texmod2.0")
    if enc_v.ndim != 2 or geom_v.ndim != 2 or view_v.ndim != 2 or seed_v.ndim != 2:
        raise InputFileError(path, "not a codec-avatar face decoder: its linear layers are not matrices")
    hidden, code_dim = enc_v.shape
    view_dim = view_v.shape[0]
    if geom_v.shape[1] != hidden or geom_v.shape[0] % 3 or view_v.shape[1] != 3:
        shapes = f"geometry {tuple(geom_v.shape)}, view {tuple(view_v.shape)}, encoder {tuple(enc_v.shape)}"
        raise InputFileError(path, f"inconsistent decoder: {shapes}")

    def chain(module: str, seed: torch.Tensor, last: int) -> tuple[int, ...]:
        idx = _indices(state, module)
        if idx != list(range(0, 2 * len(idx), 2)):
            raise InputFileError(path, f"{module} layers are numbered {idx}, expected 0, 2, 4, …")
        channels = []
        for i in idx:
            v, _ = need(f"{module}.{i}")
            if v.ndim != 4 or tuple(v.shape[2:]) != (KERNEL, KERNEL):
                raise InputFileError(path, f"{module}.{i} is not a 4×4 transposed convolution ({tuple(v.shape)})")
            if channels and v.shape[0] != channels[-1]:
                raise InputFileError(path, f"{module}.{i} takes {v.shape[0]} channels, the layer before gives {channels[-1]}")
            if not channels:
                channels.append(int(v.shape[0]))
            channels.append(int(v.shape[1]))
        if not channels or channels[-1] != last:
            raise InputFileError(path, f"{module} must end in {last} channels, got {channels[-1:] or 'no layers'}")
        if seed.shape != (channels[0] * SEED_SIDE * SEED_SIDE, hidden + view_dim):
            expected = (channels[0] * SEED_SIDE * SEED_SIDE, hidden + view_dim)
            raise InputFileError(path, f"{module}'s seed layer is {tuple(seed.shape)}, expected {expected}")
        return tuple(channels)

    tex = chain("texmod", seed_v, 3)
    warp: tuple[int, ...] = ()
    if _wn_pair(state, "warpmod2.0") is not None or _indices(state, "warpmod"):
        warp = chain("warpmod", need("warpmod2.0")[0], 2)
    fixed = state.get("frontal_view")
    fixed_view = None
    if fixed is not None:
        if tuple(fixed.shape) != (3,):
            raise InputFileError(path, f"frontal_view must hold 3 values, got {tuple(fixed.shape)}")
        fixed_view = tuple(float(x) for x in fixed.tolist())
    return DecoderSpec(int(code_dim), int(hidden), int(view_dim), int(geom_v.shape[0] // 3), tex, warp,
                       fixed_view)  # type: ignore[arg-type]


def _fuse(v: torch.Tensor, g: torch.Tensor, out_dim: int) -> torch.Tensor:
    """weight = v · g / ‖v‖_F, g broadcast along the output dimension ``out_dim`` of v."""
    shape = [1] * v.ndim
    shape[out_dim] = v.shape[out_dim]
    if g.numel() != v.shape[out_dim]:
        raise ValueError(f"weight-norm magnitude has {g.numel()} values for {v.shape[out_dim]} outputs")
    return v * (g.reshape(shape) / v.norm())


def convert_release_decoder(
    state: Mapping[str, torch.Tensor], path: str | Path = "decoder"
) -> tuple[DecoderSpec, dict[str, torch.Tensor]]:
    """The release's ``dec_params.pt`` state dict (or an Audio2Photoreal body checkpoint's
    ``decoder_face.*``) → (spec, avflow state dict). Strict: every tensor must be used, every
    avflow tensor must be filled, with matching shapes; else a one-line :class:`InputFileError`.
    """
    state = {k: v for k, v in _strip_body_prefix(state).items() if isinstance(v, torch.Tensor)}
    spec = infer_spec(state, path)
    used: set[str] = set()
    out: dict[str, torch.Tensor] = {}

    def take(key: str) -> torch.Tensor:
        used.add(key)
        return state[key].detach().to(torch.float32)

    def weight(prefix: str, out_dim: int) -> torch.Tensor:
        pair = _wn_pair(state, prefix)
        assert pair is not None
        keys = (f"{prefix}.weight_v", f"{prefix}.weight_g") if f"{prefix}.weight_v" in state else (f"{prefix}.weight", f"{prefix}.g")
        try:
            return _fuse(take(keys[0]), take(keys[1]), out_dim)
        except ValueError as err:
            raise InputFileError(path, f"{prefix}: {err}") from err

    for src, dst in _LINEARS.items():
        if _wn_pair(state, src) is None:
            continue
        out[f"{dst}.weight"] = weight(src, 0)
        if f"{src}.bias" in state:
            out[f"{dst}.bias"] = take(f"{src}.bias")
    for module, dst in (("texmod", "tex_up"), ("warpmod", "warp_up")):
        for j, i in enumerate(_indices(state, module)):
            out[f"{dst}.{j}.weight"] = weight(f"{module}.{i}", 1)  # ConvTranspose2d: (in, out, k, k)
            if f"{module}.{i}.bias" in state:
                out[f"{dst}.{j}.bias"] = take(f"{module}.{i}.bias")
    if "bias" in state:
        out["tex_bias"] = take("bias")
    if "frontal_view" in state:
        used.add("frontal_view")
    unexpected = sorted(set(state) - used)
    if unexpected:
        raise InputFileError(path, f"{len(unexpected)} tensors the face decoder does not have (e.g. {', '.join(unexpected[:3])})")
    problem = state_dict_mismatch(CodecFaceDecoder(spec), out)
    if problem:
        raise InputFileError(path, f"face decoder weights do not fit their own layer sizes: {problem}")
    return spec, out


def _torch_load(path: Path) -> Any:
    from avflow_cli.torchfile import load_torch_file

    # weights only, never runs code; one line of our own for a hostile or damaged file
    return load_torch_file(path, "face decoder weight file", noun="PyTorch weight file")


def load_release_decoder(path: str | Path) -> tuple[DecoderSpec, dict[str, torch.Tensor]]:
    """Read the release's ``decoder/dec_params.pt`` (a raw state dict, loaded strictly by its
    ``Renderer``) or an Audio2Photoreal body checkpoint ``{"model": {..."decoder_face.*"}}``."""
    path = Path(path)
    raw = _torch_load(path)
    if isinstance(raw, Mapping) and "model" in raw and isinstance(raw["model"], Mapping):
        raw = raw["model"]
    if not isinstance(raw, Mapping) or not raw:
        raise InputFileError(path, "not a state dict (expected the decoder's tensors by name)")
    return convert_release_decoder(raw, path)
