"""The codec avatar a model directory carries: face decoder + mesh topology + neutral-face
statistics, and the renderer that turns face codes and head poses into frames.

Where the release keeps it (facebookresearch/av_flow ``learn/trainer.py``, ``models/renderer.py``,
README; ``{data}`` = the 50 h dataset folder)::

    {data}/decoder/dec_params.pt     the decoder's state dict (weight-normalised layers)
    {data}/decoder/vert_mean.bin     neutral-face vertex mean, raw float32, V × 3 (mm)
    {data}/decoder/vert_var.txt      one number: the geometry variance (std = √var)
    {data}/face_topo_small_neck.obj  the mesh (README: moved under ./models/)

avflow keeps the converted avatar as a folder ``AVATAR_DIR`` inside the model directory::

    avatar/config.json        {"format": "avflow-avatar", "decoder": {layer widths}, "vert_std",
                               "source": {...}}
    avatar/model.safetensors  decoder weights (weight norm fused) + "vert_mean" (V, 3)
    avatar/topology.npz       v, vt, vi, vti of the mesh

Rendering follows the release's ``Renderer.render``: ``[R | t]`` head pose (default
``DEFAULT_HEADPOSE``) → view direction → decoder → ``geom · std + mean`` → projection with the
release camera scaled to the requested size → rasterised, texture-mapped frame, clamped to
0..255 on a black background (anti-aliased here; the release has no anti-aliasing).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from avflow_cli import __version__
from avflow_cli import constants as K
from avflow_cli.errors import AvflowError, InputFileError
from avflow_cli.fsutil import atomic_dir
from avflow_cli.jsonfile import read_json
from avflow_cli.render.camera import Camera, head_relative, project, release_camera
from avflow_cli.render.decoder import CodecFaceDecoder, DecoderSpec, load_release_decoder
from avflow_cli.render.obj import Topology, read_obj
from avflow_cli.render.raster import MeshRasterizer
from avflow_cli.weights import load_safetensors, save_safetensors, state_dict_mismatch

__all__ = [
    "AVATAR_DIR",
    "ReleaseAvatarFiles",
    "CodecAvatar",
    "find_release_avatar_files",
    "import_release_avatar",
    "find_avatar",
    "is_avatar_dir",
]

AVATAR_DIR = "avatar"  # inside a model directory (and a session corpus or shard directory)
AVATAR_FORMAT = "avflow-avatar"
AVATAR_FORMAT_VERSION = 1
AVATAR_KIND = "codec_face"
CONFIG_NAME = "config.json"
WEIGHTS_NAME = K.WEIGHTS_NAME
TOPOLOGY_NAME = "topology.npz"
DECODER_DIR = "decoder"
DECODER_FILES = ("dec_params.pt", "vert_mean.bin", "vert_var.txt")
TOPOLOGY_OBJ = "face_topo_small_neck.obj"
A2P_BODY_CHECKPOINT = "body_dec.ckpt"  # Audio2Photoreal ca_body checkpoint: its decoder_face.* is this family
_VERT_MEAN_KEY = "vert_mean"


@dataclass(frozen=True)
class ReleaseAvatarFiles:
    """The located files of one released face decoder."""

    weights: Path  # dec_params.pt (or an Audio2Photoreal body_dec.ckpt)
    vert_mean: Path
    vert_var: Path
    obj: Path


def _one_obj(folder: Path) -> Path | None:
    named = [p for p in folder.rglob(TOPOLOGY_OBJ) if p.is_file()]
    if len(named) > 1:
        raise InputFileError(folder, f"{len(named)} copies of {TOPOLOGY_OBJ} under it; point at one dataset folder")
    return named[0] if named else None


def find_release_avatar_files(folder: str | Path) -> ReleaseAvatarFiles | None:
    """The release's decoder files under ``folder`` (see module doc), or None when there is no
    ``decoder/dec_params.pt`` (or ``decoder/body_dec.ckpt``, an Audio2Photoreal body checkpoint
    whose ``decoder_face`` is read). A decoder whose companions are missing is a one-line error."""
    folder = Path(folder)
    found = sorted(p for name in (DECODER_FILES[0], A2P_BODY_CHECKPOINT) for p in folder.rglob(name)
                   if p.is_file() and p.parent.name == DECODER_DIR)
    if not found:
        return None
    if len(found) > 1:
        listing = ", ".join(str(p.relative_to(folder)) for p in found[:3])
        raise InputFileError(folder, f"{len(found)} face decoders under it ({listing}); point at one dataset folder")
    dec_dir = found[0].parent
    for name in DECODER_FILES[1:]:
        if not (dec_dir / name).is_file():
            raise InputFileError(dec_dir / name, "file not found (the face decoder's neutral-face statistics)")
    obj = _one_obj(folder) or _one_obj(dec_dir.parent)
    if obj is None:
        raise InputFileError(folder, f"a face decoder is here but no {TOPOLOGY_OBJ} (the mesh it decodes)")
    return ReleaseAvatarFiles(found[0], dec_dir / DECODER_FILES[1], dec_dir / DECODER_FILES[2], obj)


def _read_vert_mean(path: Path) -> np.ndarray:
    try:
        raw = np.fromfile(path, dtype=np.float32)
    except OSError as err:
        raise InputFileError(path, f"cannot read ({err.strerror})") from err
    if raw.size == 0 or raw.size % 3:
        raise InputFileError(path, f"holds {raw.size} float32 values, not a whole number of xyz vertices")
    if not np.isfinite(raw).all():
        raise InputFileError(path, "holds NaN or Inf")
    return raw.reshape(-1, 3)


def _read_vert_std(path: Path) -> float:
    try:
        values = np.loadtxt(path, dtype=np.float64, ndmin=1)
    except (OSError, ValueError) as err:
        raise InputFileError(path, f"cannot read one number from it ({err})") from err
    if values.size != 1 or not np.isfinite(values[0]) or values[0] <= 0:
        raise InputFileError(path, f"must hold one positive variance, got {values.tolist()[:3]}")
    return float(np.float32(values[0]) ** 0.5)  # the release: float(np.loadtxt(..., float32) ** 0.5)


class CodecAvatar:
    """A codec-avatar face decoder with its mesh, ready to decode and render on one device."""

    def __init__(
        self,
        spec: DecoderSpec,
        state: dict[str, torch.Tensor],
        topology: Topology,
        vert_mean: np.ndarray,
        vert_std: float,
        *,
        source: dict[str, Any] | None = None,
        device: torch.device | str = "cpu",
        where: str | Path = "avatar",
    ) -> None:
        if topology.num_vertices != spec.num_vertices:
            raise InputFileError(
                where, f"the decoder outputs {spec.num_vertices} vertices but the mesh .obj has {topology.num_vertices}")
        if vert_mean.shape != (spec.num_vertices, 3):
            raise InputFileError(where, f"the neutral-face mean has {vert_mean.shape[0]} vertices, the decoder {spec.num_vertices}")
        self.spec = spec
        self.topology = topology
        self.vert_std = float(vert_std)
        self.source = dict(source or {})
        self.device = torch.device(device)
        self.decoder = CodecFaceDecoder(spec)
        self.decoder.load_state_dict(state, strict=True)
        self.decoder.to(self.device).eval()
        self.vert_mean = torch.as_tensor(vert_mean, dtype=torch.float32, device=self.device)  # (V, 3)
        self._raster: MeshRasterizer | None = None

    @property
    def code_dim(self) -> int:
        return self.spec.code_dim

    @property
    def head_pose_mode(self) -> str:
        """"camera": motion head poses are used as [R | t]; "fixed": the release's default pose."""
        return str(self.source.get("head_pose", POSE_CAMERA))

    def describe(self) -> str:
        warp = "warp" if self.spec.warp_channels else "no warp"
        spec = self.spec
        return f"codec avatar ({spec.code_dim}-d codes, {spec.num_vertices} vertices, {spec.tex_size}² texture, {warp})"

    # --- files ----------------------------------------------------------------------------------
    def save(self, folder: str | Path, *, force: bool = False) -> Path:
        """Write the avatar folder atomically (kind ``avatar``)."""
        folder = Path(folder)
        config = {
            "format": AVATAR_FORMAT,
            "format_version": AVATAR_FORMAT_VERSION,
            "kind": AVATAR_KIND,
            "decoder": self.spec.to_json(),
            "vert_std": self.vert_std,
            "num_vertices": self.spec.num_vertices,
            "source": self.source,
            "avflow_version": __version__,
        }
        tensors = {k: v.detach().cpu().contiguous() for k, v in self.decoder.state_dict().items()}
        tensors[_VERT_MEAN_KEY] = self.vert_mean.detach().cpu().contiguous()
        with atomic_dir(folder, kind="avatar", force=force) as tmp:
            save_safetensors(tmp / WEIGHTS_NAME, tensors)
            self.topology.save_npz(tmp / TOPOLOGY_NAME)
            (tmp / CONFIG_NAME).write_text(json.dumps(config, indent=1))
        return folder

    @classmethod
    def load(cls, folder: str | Path, device: torch.device | str = "cpu") -> CodecAvatar:
        """Read an avatar folder written by :meth:`save`; one-line errors for anything amiss."""
        folder = Path(folder)
        cfg_path = folder / CONFIG_NAME
        if not cfg_path.is_file():
            raise InputFileError(cfg_path, "file not found (not an avatar folder)")
        config = read_json(cfg_path)
        found = config.get("format") if isinstance(config, dict) else type(config).__name__
        if not isinstance(config, dict) or config.get("format") != AVATAR_FORMAT or config.get("kind") != AVATAR_KIND:
            raise InputFileError(cfg_path, f"not an avflow codec avatar (format {found!r})")
        if int(config.get("format_version", 0)) > AVATAR_FORMAT_VERSION:
            raise InputFileError(cfg_path, "written by a newer avflow; upgrade to read it")
        try:
            spec = DecoderSpec.from_json(config["decoder"])
            vert_std = float(config["vert_std"])
        except (KeyError, TypeError, ValueError) as err:
            raise InputFileError(cfg_path, f"incomplete avatar config ({err})") from err
        tensors = load_safetensors(folder / WEIGHTS_NAME, "the avatar's decoder weights")
        vert_mean = tensors.pop(_VERT_MEAN_KEY, None)
        if vert_mean is None:
            raise InputFileError(folder / WEIGHTS_NAME, "has no neutral-face mean ('vert_mean')")
        problem = state_dict_mismatch(CodecFaceDecoder(spec), tensors)
        if problem:
            raise InputFileError(folder / WEIGHTS_NAME, f"weights do not match the avatar config: {problem}")
        topology = Topology.load_npz(folder / TOPOLOGY_NAME)
        return cls(spec, tensors, topology, vert_mean.numpy(), vert_std, source=config.get("source"),
                   device=device, where=folder)

    # --- decoding and rendering ------------------------------------------------------------------
    def check_codes(self, codes: np.ndarray | torch.Tensor, what: str = "face codes") -> None:
        width = codes.shape[-1]
        if width != self.spec.code_dim:
            raise AvflowError(f"{what} are {width}-d but the avatar's decoder takes {self.spec.code_dim}-d expression codes")

    @torch.inference_mode()
    def decode(self, codes: torch.Tensor, headpose: torch.Tensor) -> dict[str, torch.Tensor]:
        """codes (B, F), headpose (B, 3, 4) → {"verts": (B, V, 3) mm, "tex": (B, 3, S, S) 0..255,
        "camrot", "campos", "view"} as the release's ``Renderer.render`` computes them."""
        self.check_codes(codes)
        rel = head_relative(headpose.to(self.device, torch.float32))
        out = self.decoder(codes.to(self.device, torch.float32), rel["view"])
        verts = out["geom"] * self.vert_std + self.vert_mean  # (B, V, 3)
        return {"verts": verts, "tex": out["tex"], **rel}

    @torch.inference_mode()
    def render(
        self,
        codes: torch.Tensor,
        headpose: torch.Tensor,
        *,
        camera: Camera | None = None,
        background: tuple[float, float, float] = (0.0, 0.0, 0.0),
        antialiased: bool = True,
    ) -> torch.Tensor:
        """codes (B, F), headpose (B, 3, 4) → (B, H, W, 3) uint8 frames (on the avatar's device)."""
        camera = camera or release_camera()
        if self._raster is None:
            self._raster = MeshRasterizer(self.topology, self.device)
        dec = self.decode(codes, headpose)
        B = codes.shape[0]
        v_pix = project(dec["verts"], dec["camrot"], dec["campos"], camera.focal_tensor(B, self.device),
                        camera.princpt_tensor(B, self.device))  # (B, V, 3)
        bg = torch.tensor(background, dtype=torch.float32, device=self.device)
        img = self._raster.render(v_pix, dec["tex"], camera.height, camera.width, background=bg, antialiased=antialiased)
        return img.clamp(0, 255).round().to(torch.uint8).permute(0, 2, 3, 1)  # (B, H, W, 3)


def import_release_avatar(files: ReleaseAvatarFiles, device: torch.device | str = "cpu") -> CodecAvatar:
    """Convert and cross-check the released decoder files in memory (nothing is written)."""
    spec, state = load_release_decoder(files.weights)
    topology = read_obj(files.obj)
    vert_mean = _read_vert_mean(files.vert_mean)
    if topology.num_vertices != spec.num_vertices:
        raise InputFileError(
            files.obj, f"has {topology.num_vertices} vertices but the decoder {files.weights.name} outputs {spec.num_vertices}")
    if vert_mean.shape[0] != spec.num_vertices:
        raise InputFileError(files.vert_mean, f"holds {vert_mean.shape[0]} vertices but the decoder outputs {spec.num_vertices}")
    source = {"weights": str(files.weights), "vert_mean": str(files.vert_mean), "vert_var": str(files.vert_var),
              "obj": str(files.obj), "format": "facebookresearch/av_flow models/decoder/face_vae.py:Decoder"}
    return CodecAvatar(spec, state, topology, vert_mean, _read_vert_std(files.vert_var), source=source, device=device,
                       where=files.weights.parent)


def is_avatar_dir(path: str | Path) -> bool:
    path = Path(path)
    if not (path / CONFIG_NAME).is_file():
        return False
    try:
        return json.loads((path / CONFIG_NAME).read_text()).get("format") == AVATAR_FORMAT
    except (OSError, json.JSONDecodeError):
        return False


def find_avatar(folder: str | Path) -> Path | None:
    """The codec avatar a model (or shard, or corpus) directory carries, or None."""
    path = Path(folder) / AVATAR_DIR
    return path if is_avatar_dir(path) else None


# ---------------------------------------------------------------------------------------------
# Carrying the avatar along: dataset → sessions → shards → model directory
# ---------------------------------------------------------------------------------------------
POSE_CAMERA = "camera"  # head poses are the head → camera [R | t] in mm (the 50 h release)
POSE_FIXED = "fixed"  # head poses are not camera transforms (Audio2Photoreal's skeleton angles): default pose


def pose_mode(avatar_dir: str | Path) -> str:
    """How an avatar folder wants head poses used (recorded when it was imported)."""
    try:
        config = json.loads((Path(avatar_dir) / CONFIG_NAME).read_text())
    except (OSError, json.JSONDecodeError):
        return POSE_CAMERA
    return str((config.get("source") or {}).get("head_pose", POSE_CAMERA))


def carry_avatar(src: str | Path, dst: str | Path) -> Path | None:
    """Copy ``src/avatar`` to ``dst/avatar`` (atomically) when it exists; returns the copy."""
    import shutil

    source = find_avatar(src)
    if source is None:
        return None
    target = Path(dst) / AVATAR_DIR
    files = [p for p in source.iterdir() if p.is_file() and not p.name.startswith(".")]

    def same() -> bool:  # already carried (prep calls this once per shard part)
        return all((target / p.name).is_file() and (target / p.name).stat().st_size == p.stat().st_size for p in files) \
            and (target / CONFIG_NAME).read_bytes() == (source / CONFIG_NAME).read_bytes()

    if is_avatar_dir(target) and same():
        return target
    try:
        with atomic_dir(target, kind="avatar", force=True) as tmp:
            for item in files:
                shutil.copyfile(item, tmp / item.name)
    except OSError:
        if not (is_avatar_dir(target) and same()):  # another shard job may have carried it meanwhile
            raise
    return target


def carry_face_decoders(src: str | Path, dst: str | Path) -> Path | None:
    """The face decoders a folder carries travel with what is made from it (sessions → shards →
    model directory), so previews, ``render`` and the lip/smile metrics find them there: the codec
    avatar (``avatar/``, :func:`carry_avatar`) and the demo avatar's exact ``face_decoder.npz``.
    Only what differs is copied, atomically. Returns the demo decoder's copy, or None."""
    import filecmp
    import shutil

    from avflow_cli.fsutil import atomic_path
    from avflow_cli.render.demo_avatar import FACE_DECODER_FILE

    carry_avatar(src, dst)
    source, target = Path(src) / FACE_DECODER_FILE, Path(dst) / FACE_DECODER_FILE
    if not source.is_file():
        return None
    if target.is_file() and filecmp.cmp(source, target, shallow=False):  # carried before (one call per shard part)
        return target
    with atomic_path(target) as tmp:
        shutil.copyfile(source, tmp)
    return target


def import_dataset_avatar(
    folders: list[Path], out: str | Path, *, code_dim: int | None, head_pose: str = POSE_CAMERA, force: bool = False
) -> tuple[Path | None, str]:
    """Convert the release-layout face decoder found in ``folders`` into ``out/avatar``.

    Used by ``prep import avflow50h`` / ``a2p``, so that ``prep`` and ``train`` carry it into the
    shard and model directories. Returns (written folder or None, a one-line message). Exactly
    one decoder may be found (several subjects' decoders cannot share one session tree).
    """
    found = [(folder, files) for folder in folders if (files := find_release_avatar_files(folder)) is not None]
    if not found:
        return None, "no face decoder (decoder/dec_params.pt + vert_mean.bin + vert_var.txt + .obj): previews show plots"
    if len(found) > 1:
        names = ", ".join(f.name for f, _ in found[:4])
        return None, f"face decoders of several subjects ({names}): import one subject at a time to carry its avatar"
    target = Path(out) / AVATAR_DIR
    if is_avatar_dir(target) and not force:
        return target, f"avatar kept at {target} (already imported)"
    avatar = import_release_avatar(found[0][1])
    if code_dim is not None and avatar.code_dim != code_dim:
        raise InputFileError(found[0][1].weights,
                             f"the face decoder takes {avatar.code_dim}-d codes but the sessions' face codes are {code_dim}-d")
    avatar.source["head_pose"] = head_pose
    avatar.save(target, force=True)
    return target, f"avatar → {target} ({avatar.describe()})"


def carry_face_decoder(
    folders: list[Path], out: str | Path, codes_file: Path | None, *, head_pose: str, force: bool = False
) -> Path | None:
    """``prep import``'s step: convert the dataset's face decoder into ``out/avatar`` and say so.

    ``codes_file`` is one of the dataset's face-code arrays (its width must match the decoder).
    A broken or mismatched decoder is a one-line error before any session is written.
    """
    from avflow_cli.console import err_console

    code_dim = None
    if codes_file is not None and Path(codes_file).is_file():
        try:
            code_dim = int(np.load(codes_file, mmap_mode="r").shape[-1])
        except (OSError, ValueError, IndexError):
            code_dim = None  # the session reader reports a broken code file itself
    path, message = import_dataset_avatar(folders, out, code_dim=code_dim, head_pose=head_pose, force=force)
    err_console.print(f"face decoder: {message}", highlight=False, soft_wrap=True)
    return path
