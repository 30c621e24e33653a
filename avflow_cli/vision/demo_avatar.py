"""The procedural 2D demo avatar: named face parameters, their exact face-code decoder, a renderer.

The demo corpus needs a face whose ground truth is known exactly, so that lip-sync and smile
metrics (lip and mouth-corner distances, paper §4) are exact rather than estimated. A face is a
short vector of named parameters (``FACE_PARAM_NAMES``, each with a range in
``FACE_PARAM_RANGES``); its "face code" is a fixed seeded invertible map ``W·params + b`` of the
same dimensionality plus small noise, so the inverse recovers the parameters exactly
(:class:`FaceDecoder`). The codes are full-rank in their own dimension, as real codec-avatar
latents are: a wider code of low rank would make the flow spend its capacity collapsing
redundant noise directions (DESIGN.md §5).

The renderer draws the face with OpenCV on a simple 3D head (an ellipsoid carrying the features)
rotated and translated by the head pose and projected with a pinhole camera, so head motion is
visible. It clips every input to its range, so generated (possibly wild) motion renders too.

Conventions: head pose rows are ``(qw, qx, qy, qz, tx, ty, tz)`` with the rotation mapping head
coordinates to camera coordinates (x right, y down, z away from the camera, millimetres); the
neutral pose is the identity rotation at ``(0, 0, DEFAULT_DISTANCE_MM)``. Letters: T frames,
P face parameters, F face-code dim.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from avflow_cli.constants import HEAD_POSE_DIM
from avflow_cli.errors import AvflowError, InputFileError
from avflow_cli.fsutil import atomic_path

__all__ = [
    "FACE_PARAM_NAMES",
    "FACE_PARAM_RANGES",
    "NEUTRAL_PARAMS",
    "LIP_CLOSED_THRESHOLD",
    "SMILE_THRESHOLD",
    "FaceDecoder",
    "lip_distance",
    "mouth_corner_distance",
    "clip_params",
    "euler_to_quat",
    "quat_to_rotmat",
    "render_frame",
    "render_frames",
    "render_video",
]

# ---------------------------------------------------------------------------------------------
# Face parameters
# ---------------------------------------------------------------------------------------------
FACE_PARAM_NAMES: tuple[str, ...] = (
    "jaw_open",  # 0 closed .. 1 wide open
    "lip_closure",  # 1 = lips pressed together (bilabials), whatever the jaw does
    "lip_round",  # 1 = rounded, protruded lips (uw, w): narrower mouth
    "smile",  # 1 = full smile: wider mouth, raised corners
    "brow_raise",  # 1 = brows fully raised
    "blink_l",  # 1 = left eye shut
    "blink_r",  # 1 = right eye shut
    "gaze_x",  # -1 left .. 1 right
    "gaze_y",  # -1 up .. 1 down
)
PARAM_INDEX = {name: i for i, name in enumerate(FACE_PARAM_NAMES)}
NUM_PARAMS = len(FACE_PARAM_NAMES)
FACE_PARAM_RANGES = np.array(
    [[0, 1], [0, 1], [0, 1], [0, 1], [0, 1], [0, 1], [0, 1], [-1, 1], [-1, 1]], dtype=np.float32
)  # (P, 2)
NEUTRAL_PARAMS = np.zeros(NUM_PARAMS, dtype=np.float32)  # (P,) closed relaxed mouth, eyes open

# Mouth geometry in millimetres (the renderer draws exactly these distances).
LIP_OPEN_MM = 16.0  # inner-lip gap at jaw_open = 1 with lips apart
MOUTH_WIDTH_MM = 50.0  # corner-to-corner distance of the neutral mouth
SMILE_WIDEN_MM = 14.0  # added by a full smile
ROUND_NARROW_MM = 12.0  # removed by fully rounded lips
# Lips count as closed below this inner gap (a silent relaxed mouth and every bilabial are below).
FACE_DECODER_FILE = "face_decoder.npz"  # where a corpus, shard dir or model dir keeps the decoder
LIP_CLOSED_THRESHOLD = 2.5
# Mouth corners count as smiling above this width: half a smile on an unrounded mouth.
SMILE_THRESHOLD = MOUTH_WIDTH_MM + 0.5 * SMILE_WIDEN_MM

# The demo face codes use one fixed map, so every demo corpus shares one decoder.
DECODER_SEED = 1969
CODE_NOISE_STD = 0.002  # code units (≈ 0.1–0.2 % of a parameter range after decoding)


def clip_params(params: np.ndarray) -> np.ndarray:
    """Replace NaN/Inf by neutral values and clip every parameter to its range. shape: (..., P)."""
    params = np.asarray(params, dtype=np.float32)
    if params.shape[-1] != NUM_PARAMS:
        raise AvflowError(f"face parameters must have {NUM_PARAMS} columns, got {params.shape[-1]}")
    params = np.where(np.isfinite(params), params, NEUTRAL_PARAMS)
    return np.clip(params, FACE_PARAM_RANGES[:, 0], FACE_PARAM_RANGES[:, 1])


def lip_distance(params: np.ndarray) -> np.ndarray:
    """Inner-lip opening in mm from face parameters (small = closed). shape: (..., P) -> (...)."""
    p = clip_params(params)
    return LIP_OPEN_MM * p[..., PARAM_INDEX["jaw_open"]] * (1.0 - p[..., PARAM_INDEX["lip_closure"]])


def mouth_corner_distance(params: np.ndarray) -> np.ndarray:
    """Corner-to-corner mouth width in mm from face parameters (large = smile). (..., P) -> (...)."""
    p = clip_params(params)
    return (
        MOUTH_WIDTH_MM
        + SMILE_WIDEN_MM * p[..., PARAM_INDEX["smile"]]
        - ROUND_NARROW_MM * p[..., PARAM_INDEX["lip_round"]]
    )


# ---------------------------------------------------------------------------------------------
# Face codes and their exact decoder
# ---------------------------------------------------------------------------------------------
@dataclass
class FaceDecoder:
    """Face codes ``codes = params @ weight.T + bias (+ noise)`` and their least-squares inverse.

    The inverse is exact up to the (tiny) code noise, which makes the demo's lip and smile
    measurements on generated face codes exact.
    """

    weight: np.ndarray  # (F, P)
    bias: np.ndarray  # (F,)
    noise_std: float = CODE_NOISE_STD
    param_names: tuple[str, ...] = FACE_PARAM_NAMES

    def __post_init__(self) -> None:
        self.weight = np.asarray(self.weight, dtype=np.float64)
        self.bias = np.asarray(self.bias, dtype=np.float64)
        self._pinv = np.linalg.pinv(self.weight)  # (P, F)

    @classmethod
    def create(cls, seed: int = DECODER_SEED, noise_std: float = CODE_NOISE_STD) -> FaceDecoder:
        """The fixed demo map: a seeded rotation of the range-normalised parameters (full rank).

        Each parameter is scaled from its range to unit spread, then mixed by a random orthogonal
        matrix, so every code dimension carries information and the codes have unit-order spread.
        """
        rng = np.random.default_rng(seed)
        q, r = np.linalg.qr(rng.normal(size=(NUM_PARAMS, NUM_PARAMS)))  # (F, F) orthogonal
        q = q * np.sign(np.diag(r))  # a unique, seed-determined rotation
        span = FACE_PARAM_RANGES[:, 1] - FACE_PARAM_RANGES[:, 0]  # (P,)
        weight = q * (2.0 / span)[None, :]  # (F, P)
        centre = FACE_PARAM_RANGES.mean(axis=1)  # (P,)
        bias = -weight @ centre + rng.normal(0.0, 0.1, size=NUM_PARAMS)  # (F,)
        return cls(weight=weight, bias=bias, noise_std=noise_std)

    @property
    def dim(self) -> int:
        """Face-code dimension F."""
        return int(self.weight.shape[0])

    def encode(self, params: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        """Face codes of parameters; adds N(0, noise_std²) noise when ``rng`` is given. (T, P) -> (T, F)."""
        params = np.asarray(params, dtype=np.float64)
        codes = params @ self.weight.T + self.bias  # (T, F)
        if rng is not None and self.noise_std > 0:
            codes = codes + rng.normal(0.0, self.noise_std, size=codes.shape)
        return codes.astype(np.float32)

    def params(self, codes: np.ndarray) -> np.ndarray:
        """Least-squares face parameters of face codes (unclipped). (T, F) -> (T, P)."""
        codes = np.asarray(codes, dtype=np.float64)
        if codes.shape[-1] != self.dim:
            raise AvflowError(f"face codes have {codes.shape[-1]} dims but the decoder expects {self.dim}")
        return ((codes - self.bias) @ self._pinv.T).astype(np.float32)  # (T, P)

    def lip_distance(self, codes: np.ndarray) -> np.ndarray:
        """Inner-lip opening in mm (small = closed). (T, F) -> (T,)."""
        return lip_distance(self.params(codes))

    def mouth_corner_distance(self, codes: np.ndarray) -> np.ndarray:
        """Mouth-corner distance in mm (large = smile). (T, F) -> (T,)."""
        return mouth_corner_distance(self.params(codes))

    def save(self, path: str | Path) -> Path:
        """Write the decoder as ``.npz`` (plain arrays, no pickle), atomically."""
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(
                    fh,
                    weight=self.weight,
                    bias=self.bias,
                    pinv=self._pinv,
                    noise_std=np.float64(self.noise_std),
                    param_names=np.array(self.param_names),
                    param_ranges=FACE_PARAM_RANGES,
                    lip_closed_threshold=np.float64(LIP_CLOSED_THRESHOLD),
                    smile_threshold=np.float64(SMILE_THRESHOLD),
                )
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> FaceDecoder:
        """Read a decoder written by :meth:`save`; one-line errors for missing or foreign files."""
        path = Path(path)
        if not path.is_file():
            raise InputFileError(path, "face decoder file not found")
        try:
            with np.load(path, allow_pickle=False) as data:
                weight, bias = data["weight"], data["bias"]
                noise_std = float(data["noise_std"])
                names = tuple(str(n) for n in data["param_names"])
        except (OSError, ValueError, KeyError) as err:
            raise InputFileError(path, f"not a demo face decoder ({err})") from err
        if names != FACE_PARAM_NAMES:
            raise InputFileError(path, f"face parameters {names} differ from avflow's {FACE_PARAM_NAMES}")
        if weight.ndim != 2 or weight.shape[1] != NUM_PARAMS or bias.shape != (weight.shape[0],):
            raise InputFileError(path, f"bad decoder shapes weight {weight.shape}, bias {bias.shape}")
        return cls(weight=weight, bias=bias, noise_std=noise_std, param_names=names)


# ---------------------------------------------------------------------------------------------
# Head pose helpers (small and local so the renderer has no dependency on prep)
# ---------------------------------------------------------------------------------------------
DEFAULT_DISTANCE_MM = 1000.0
_TRANS_LIMITS = np.array([[-400.0, 400.0], [-400.0, 400.0], [300.0, 4000.0]])  # (3, 2) renderable


def euler_to_quat(pitch: np.ndarray, yaw: np.ndarray, roll: np.ndarray) -> np.ndarray:
    """Unit quaternions (w, x, y, z) of R = Rz(roll)·Ry(yaw)·Rx(pitch), angles in radians.

    Pitch nods (about x), yaw turns (about y), roll tilts (about z). shape: (T,) x3 -> (T, 4).
    """
    hp, hy, hr = np.asarray(pitch) / 2, np.asarray(yaw) / 2, np.asarray(roll) / 2
    cp, sp, cy, sy, cr, sr = np.cos(hp), np.sin(hp), np.cos(hy), np.sin(hy), np.cos(hr), np.sin(hr)
    w = cr * cy * cp + sr * sy * sp
    x = cr * cy * sp - sr * sy * cp
    y = cr * sy * cp + sr * cy * sp
    z = sr * cy * cp - cr * sy * sp
    return np.stack([w, x, y, z], axis=-1)  # (T, 4)


def quat_to_rotmat(quat: np.ndarray) -> np.ndarray:
    """Rotation matrices of (w, x, y, z) quaternions, normalised first; zero or NaN -> identity.

    shape: (..., 4) -> (..., 3, 3)
    """
    q = np.asarray(quat, dtype=np.float64)
    norm = np.linalg.norm(q, axis=-1, keepdims=True)
    bad = ~np.isfinite(norm) | (norm < 1e-8)
    q = np.where(bad, np.array([1.0, 0.0, 0.0, 0.0]), q / np.where(bad, 1.0, norm))
    w, x, y, z = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    rot = np.stack(
        [
            1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
            2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
            2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
        ],
        axis=-1,
    )
    return rot.reshape(q.shape[:-1] + (3, 3))


# ---------------------------------------------------------------------------------------------
# Renderer
# ---------------------------------------------------------------------------------------------
DEFAULT_SIZE = 192  # pixels (square); small keeps corpus generation and previews fast
_FOCAL_PER_PX = 4.0  # focal length in units of image size: a head fills ~60 % at 1 m
_HEAD_AXES_MM = np.array([75.0, 95.0, 85.0])  # ellipsoid semi-axes (x, y, z)
_SUBPIXEL_BITS = 4  # OpenCV fixed-point drawing precision: smooth motion at small sizes
PALETTES = {  # RGB
    "actor": {"bg": (236, 240, 244), "skin": (241, 194, 160), "lip": (186, 84, 92), "brow": (84, 56, 40),
              "eye": (255, 255, 255), "iris": (60, 90, 140), "line": (120, 80, 60), "mouth": (70, 20, 30)},
    "participant": {"bg": (228, 236, 226), "skin": (198, 144, 110), "lip": (150, 70, 70),
                    "brow": (40, 30, 25), "eye": (250, 250, 250), "iris": (70, 50, 30), "line": (90, 60, 45),
                    "mouth": (60, 15, 20)},
}


def _surface(xy: np.ndarray) -> np.ndarray:
    """Lift face-plane points onto the front of the head ellipsoid: (..., 2) -> (..., 3)."""
    a, b, c = _HEAD_AXES_MM
    inside = 1.0 - (xy[..., 0] / a) ** 2 - (xy[..., 1] / b) ** 2
    z = -c * np.sqrt(np.clip(inside, 0.05, None))  # front surface faces -z (the camera)
    return np.concatenate([xy, z[..., None]], axis=-1)


def _ellipses(cx: np.ndarray, cy: np.ndarray, rx: np.ndarray, ry: np.ndarray, n: int = 14) -> np.ndarray:
    """Closed ellipse outlines, one per frame: (T,) x4 -> (T, n, 2)."""
    ang = np.linspace(0, 2 * np.pi, n, endpoint=False)
    x = cx[:, None] + rx[:, None] * np.cos(ang)  # (T, n)
    y = cy[:, None] + ry[:, None] * np.sin(ang)  # (T, n)
    return np.stack([x, y], axis=-1)


def _face_curves(p: np.ndarray) -> dict[str, np.ndarray]:
    """Every feature curve in face-plane mm for clipped params (T, P): name -> (T, k, 2)."""
    T = p.shape[0]
    col = {name: p[:, i].astype(np.float64) for name, i in PARAM_INDEX.items()}
    curves: dict[str, np.ndarray] = {}
    gaze_x, gaze_y = 4.0 * col["gaze_x"], 2.5 * col["gaze_y"]
    for side, blink, key in ((-1.0, col["blink_l"], "l"), (1.0, col["blink_r"], "r")):
        cx, cy = np.full(T, 30.0 * side), np.full(T, -15.0)
        open_ry = 6.0 * (1.0 - blink) + 0.4
        curves[f"eye_{key}"] = _ellipses(cx, cy, np.full(T, 12.0), open_ry)
        iris_ry = np.minimum(4.0, open_ry)
        curves[f"iris_{key}"] = _ellipses(cx + gaze_x, cy + gaze_y, np.full(T, 4.0), iris_ry, 10)
        bx = cx[:, None] + side * np.linspace(-13.0, 15.0, 5)
        by = cy[:, None] - 13.0 - 9.0 * col["brow_raise"][:, None] - np.array([0.0, 2.5, 3.5, 2.5, 0.0])
        curves[f"brow_{key}"] = np.stack([bx, by], axis=-1)
    nose = np.array([[0.0, -8.0], [3.0, 14.0], [-5.0, 19.0], [0.0, 21.0], [6.0, 19.0]])
    curves["nose"] = np.broadcast_to(nose, (T, 5, 2))
    # Mouth: corners at +-width/2 (raised by a smile), inner gap = lip_distance, lower lip moves most.
    half_w = 0.5 * mouth_corner_distance(p)[:, None]
    gap = lip_distance(p)[:, None]
    smile, rnd = col["smile"][:, None], col["lip_round"][:, None]
    s = np.linspace(-1.0, 1.0, 9)
    bulge = (1.0 - s**2) ** 0.7  # 0 at the corners, 1 in the middle
    centre_y, corner_y = 45.0, 45.0 - 5.0 * smile + 2.0 * rnd
    x = s * half_w  # (T, 9)
    upper_in = corner_y + (centre_y - corner_y - 0.3 * gap) * bulge
    lower_in = corner_y + (centre_y - corner_y + 0.7 * gap) * bulge
    thick = 4.0 + 2.0 * rnd
    curves["upper_out"] = np.stack([x, upper_in - thick * bulge - 0.5], axis=-1)
    curves["lower_out"] = np.stack([x, lower_in + (thick + 1.0) * bulge + 0.5], axis=-1)
    curves["upper_in"] = np.stack([x, upper_in], axis=-1)
    curves["lower_in"] = np.stack([x, lower_in], axis=-1)
    u = np.linspace(-1, 1, 7)
    chin_y = 75.0 + 10.0 * col["jaw_open"][:, None] - 2.0 * (1 - u**2)  # (T, 7): drops as the jaw opens
    curves["chin"] = np.stack([np.broadcast_to(14.0 * u, (T, 7)), chin_y], axis=-1)
    return curves


def _pose_arrays(head_pose: np.ndarray | None, T: int) -> tuple[np.ndarray, np.ndarray]:
    """Rotations (T, 3, 3) and clipped translations (T, 3) of (T, 7) poses (None = neutral)."""
    if head_pose is None:
        return np.broadcast_to(np.eye(3), (T, 3, 3)), np.broadcast_to([0.0, 0.0, DEFAULT_DISTANCE_MM], (T, 3))
    head_pose = np.asarray(head_pose, dtype=np.float64)
    if head_pose.shape != (T, HEAD_POSE_DIM):
        raise AvflowError(f"head pose must be ({T}, {HEAD_POSE_DIM}) got {head_pose.shape}")
    rot = quat_to_rotmat(head_pose[:, :4])  # (T, 3, 3)
    trans = np.where(np.isfinite(head_pose[:, 4:]), head_pose[:, 4:], [0.0, 0.0, DEFAULT_DISTANCE_MM])
    return rot, np.clip(trans, _TRANS_LIMITS[:, 0], _TRANS_LIMITS[:, 1])


def render_frames(
    params: np.ndarray,
    head_pose: np.ndarray | None = None,
    size: int = DEFAULT_SIZE,
    *,
    palette: str = "actor",
) -> Iterator[np.ndarray]:
    """Yield avatar frames (size, size, 3) uint8 RGB for params (T, P) and head pose (T, 7) or None.

    The geometry of all frames is computed at once (vectorised); only drawing runs per frame.
    Every value is clipped to a drawable range first, so generated motion never crashes it.
    """
    import cv2

    if palette not in PALETTES:
        raise AvflowError(f"unknown palette {palette!r}; choose from {sorted(PALETTES)}")
    colors = PALETTES[palette]
    p = clip_params(np.atleast_2d(params))  # (T, P)
    T = p.shape[0]
    rot, trans = _pose_arrays(head_pose, T)
    focal = _FOCAL_PER_PX * size
    scale = float(1 << _SUBPIXEL_BITS)

    def to_pixels(points3: np.ndarray) -> np.ndarray:
        """Head-frame points (T, K, 3) -> fixed-point pixel coordinates (T, K, 2) int32."""
        cam = np.einsum("tij,tkj->tki", rot, points3) + trans[:, None, :]  # (T, K, 3)
        pix = focal * cam[..., :2] / np.clip(cam[..., 2:], 50.0, None) + size / 2.0  # (T, K, 2)
        return np.round(np.clip(pix, -4 * size, 5 * size) * scale).astype(np.int32)

    # Head silhouette: the rotated ellipsoid's outline (orthographic shape, perspective scale).
    spread = rot @ np.diag(_HEAD_AXES_MM**2) @ np.swapaxes(rot, 1, 2)  # (T, 3, 3)
    l11 = np.sqrt(spread[:, 0, 0])
    l21 = spread[:, 1, 0] / l11
    l22 = np.sqrt(np.clip(spread[:, 1, 1] - l21**2, 1e-6, None))
    ang = np.linspace(0, 2 * np.pi, 40, endpoint=False)
    ring_x = l11[:, None] * np.cos(ang)  # (T, 40)
    ring_y = l21[:, None] * np.cos(ang) + l22[:, None] * np.sin(ang)
    outline = focal * (np.stack([ring_x, ring_y], -1) + trans[:, None, :2]) / trans[:, None, 2:] + size / 2.0
    outline = np.round(outline * scale).astype(np.int32)  # (T, 40, 2)
    neck3 = np.array([[-30, 80, 20], [30, 80, 20], [34, 150, 20], [-34, 150, 20]], dtype=np.float64)
    neck = to_pixels(np.broadcast_to(neck3, (T, 4, 3)))  # (T, 4, 2)

    curves = _face_curves(p)
    names = list(curves)
    bounds = np.cumsum([0] + [curves[n].shape[1] for n in names])
    pix = to_pixels(_surface(np.concatenate([curves[n] for n in names], axis=1)))  # (T, K, 2)
    seg = {n: (int(bounds[i]), int(bounds[i + 1])) for i, n in enumerate(names)}
    gap_open = lip_distance(p) > 0.3  # (T,)
    blinks = p[:, [PARAM_INDEX["blink_l"], PARAM_INDEX["blink_r"]]]  # (T, 2)
    aa, bits = cv2.LINE_AA, _SUBPIXEL_BITS
    background = np.empty((size, size, 3), dtype=np.uint8)
    background[:] = colors["bg"]

    for t in range(T):
        img = background.copy()
        part = {n: pix[t, a:b] for n, (a, b) in seg.items()}
        cv2.fillPoly(img, [neck[t]], colors["skin"], aa, bits)  # separate calls: overlaps would cancel
        cv2.fillPoly(img, [outline[t]], colors["skin"], aa, bits)
        cv2.polylines(img, [outline[t]], True, colors["line"], 1, aa, bits)
        for k, key in enumerate("lr"):
            cv2.fillPoly(img, [part[f"eye_{key}"]], colors["eye"], aa, bits)
            if blinks[t, k] < 0.6:
                cv2.fillPoly(img, [part[f"iris_{key}"]], colors["iris"], aa, bits)
            cv2.polylines(img, [part[f"eye_{key}"]], True, colors["line"], 1, aa, bits)
        cv2.polylines(img, [part["brow_l"], part["brow_r"]], False, colors["brow"], 2, aa, bits)
        cv2.polylines(img, [part["nose"], part["chin"]], False, colors["line"], 1, aa, bits)
        lips = np.concatenate([part["upper_out"], part["lower_out"][::-1]])
        cv2.fillPoly(img, [lips], colors["lip"], aa, bits)
        if gap_open[t]:
            opening = np.concatenate([part["upper_in"], part["lower_in"][::-1]])
            cv2.fillPoly(img, [opening], colors["mouth"], aa, bits)
        else:
            cv2.polylines(img, [part["upper_in"]], False, colors["mouth"], 1, aa, bits)
        yield img


def render_frame(
    params_row: np.ndarray,
    pose_row: np.ndarray | None = None,
    size: int = DEFAULT_SIZE,
    *,
    palette: str = "actor",
) -> np.ndarray:
    """Draw one frame. params_row (P,), pose_row (7,) or None -> (size, size, 3) uint8 RGB."""
    pose = None if pose_row is None else np.asarray(pose_row, dtype=np.float64).reshape(1, -1)
    return next(render_frames(np.asarray(params_row).reshape(1, -1), pose, size, palette=palette))


def _ffmpeg() -> str:
    exe = shutil.which("ffmpeg")
    if exe is None:
        raise AvflowError("ffmpeg not found: run `make install` or `sudo apt-get install ffmpeg`")
    return exe


def render_video(
    path: str | Path,
    params: np.ndarray,
    head_pose: np.ndarray | None,
    fps: float,
    audio: np.ndarray | None = None,
    audio_sr: int | None = None,
    *,
    size: int = DEFAULT_SIZE,
    palette: str = "actor",
    crf: int = 23,
) -> Path:
    """Render an avatar video (H.264 mp4), muxing ``audio`` when given; written atomically.

    params (T, P), head_pose (T, 7) wxyz + translation mm or None (front-facing at 1 m),
    audio (N,) or (C, N) float at ``audio_sr``. Values are clipped, so generated motion is safe.
    """
    params = np.asarray(params, dtype=np.float32)
    if params.ndim != 2 or params.shape[0] == 0:
        raise AvflowError(f"face parameters must be a non-empty (T, {NUM_PARAMS}) array, got {params.shape}")
    if head_pose is not None:
        head_pose = np.asarray(head_pose, dtype=np.float64)
        if head_pose.ndim != 2 or head_pose.shape[1] != HEAD_POSE_DIM:
            raise AvflowError(f"head pose must be (T, {HEAD_POSE_DIM}), got {head_pose.shape}")
        if head_pose.shape[0] != params.shape[0]:
            n = min(head_pose.shape[0], params.shape[0])
            params, head_pose = params[:n], head_pose[:n]
    if not fps > 0:
        raise AvflowError(f"fps must be positive, got {fps}")
    if audio is not None and not audio_sr:
        raise AvflowError("audio_sr is required with audio")
    size = int(size) + int(size) % 2  # yuv420p needs even dimensions
    exe = _ffmpeg()
    with tempfile.TemporaryDirectory(prefix="avflow-render-") as tmpdir, atomic_path(path) as tmp_out:
        cmd = [exe, "-hide_banner", "-loglevel", "error", "-y",
               "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{size}x{size}", "-r", f"{fps:.6f}", "-i", "-"]
        if audio is not None:
            from avflow_cli.audio.io import write_audio  # imports torch: only when muxing audio

            wav = Path(tmpdir) / "audio.wav"
            write_audio(wav, np.nan_to_num(np.asarray(audio, dtype=np.float32)), int(audio_sr))
            cmd += ["-i", str(wav), "-c:a", "aac", "-b:a", "96k", "-shortest"]
        cmd += ["-c:v", "libx264", "-preset", "ultrafast", "-crf", str(crf), "-pix_fmt", "yuv420p",
                "-threads", "1", "-movflags", "+faststart", str(tmp_out)]
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
        assert proc.stdin is not None
        try:
            for frame in render_frames(params, head_pose, size, palette=palette):
                proc.stdin.write(frame.tobytes())
            proc.stdin.close()
        except BrokenPipeError:
            pass
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        if proc.wait() != 0:
            last = (err.strip().splitlines() or ["no message"])[-1]
            raise AvflowError(f"{path}: ffmpeg failed to encode the video ({last})")
    return Path(path)
