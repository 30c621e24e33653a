"""The procedural 2D demo avatar: named face parameters, their exact face-code decoder, a renderer.

The demo corpus needs a face whose ground truth is known exactly, so that lip-sync and smile
metrics (lip and mouth-corner distances, paper §4) are exact rather than estimated. A face is a
short vector of named parameters (``FACE_PARAM_NAMES``, each with a range in
``FACE_PARAM_RANGES``); its "face code" is a fixed seeded invertible map ``W·params + b`` of the
same dimensionality plus small noise, so the inverse recovers the parameters exactly
(:class:`FaceDecoder`). The codes are full-rank in their own dimension, as real codec-avatar
latents are: a wider code of low rank would make the flow spend its capacity collapsing
redundant noise directions (docs/ARCHITECTURE.md §5).

The renderer (:mod:`avflow_cli.render.avatar_drawing`) draws a shaded head with hair, ears,
neck and shoulders, rotated and translated by the head pose and projected with a pinhole camera;
every parameter shows (jaw, lip closure and rounding, smile with cheeks and folds, brows, blinks,
gaze). It clips every input to its range, so generated (possibly wild) motion renders too.

Conventions: head pose rows are ``(qw, qx, qy, qz, tx, ty, tz)`` with the rotation mapping head
coordinates to camera coordinates (x right, y down, z away from the camera, millimetres); the
neutral pose is the identity rotation at ``(0, 0, DEFAULT_DISTANCE_MM)``. Letters: T frames,
P face parameters, F face-code dim.
"""

from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from avflow_cli.constants import HEAD_POSE_DIM
from avflow_cli.errors import AvflowError, InputFileError
from avflow_cli.npzfile import READ_ERRORS, npz_problem
from avflow_cli.fsutil import atomic_path
from avflow_cli.vision.headpose import quat_to_rotmat  # re-exported: part of the demo avatar's API

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
        except READ_ERRORS as err:  # damaged archives (BadZipFile, a bad CRC) too; TypeError: an .npy has no `with`
            problem = str(err) if isinstance(err, KeyError) else npz_problem(path, err)
            raise InputFileError(path, f"not a demo face decoder ({problem})") from err
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


# ---------------------------------------------------------------------------------------------
# Renderer (the drawing itself: avflow_cli.render.avatar_drawing)
# ---------------------------------------------------------------------------------------------
DEFAULT_SIZE = 512  # pixels (square): previews; the demo corpus renders its participant smaller
PALETTES = {  # RGB
    "actor": {"bg": (226, 232, 240), "bg2": (176, 190, 208), "skin": (236, 188, 156), "skin_lit": (246, 204, 176),
              "shade": (214, 164, 134), "lid": (222, 170, 140), "blush": (232, 138, 128), "hair": (96, 62, 40),
              "hair_line": (70, 44, 28), "lip": (190, 92, 98), "lip_dark": (170, 78, 86), "brow": (84, 56, 40),
              "eye": (250, 250, 250), "iris": (52, 112, 168), "pupil": (22, 22, 30), "lash": (60, 40, 32),
              "line": (150, 100, 76), "mouth": (78, 22, 32), "teeth": (244, 240, 228), "tongue": (222, 128, 130),
              "nostril": (120, 70, 56), "shirt": (92, 96, 126), "shirt_line": (66, 70, 98)},
    "participant": {"bg": (222, 234, 222), "bg2": (170, 196, 176), "skin": (196, 142, 108), "skin_lit": (212, 160, 126),
                    "shade": (172, 120, 90), "lid": (182, 128, 96), "blush": (196, 110, 96), "hair": (36, 28, 24),
                    "hair_line": (20, 16, 14), "lip": (150, 74, 74), "lip_dark": (132, 62, 64), "brow": (34, 26, 22),
                    "eye": (248, 248, 246), "iris": (76, 52, 32), "pupil": (18, 14, 12), "lash": (26, 20, 18),
                    "line": (120, 78, 56), "mouth": (62, 16, 22), "teeth": (240, 236, 224), "tongue": (176, 84, 88),
                    "nostril": (96, 56, 42), "shirt": (150, 70, 60), "shirt_line": (110, 50, 42)},
}
HAIRLINES = {"actor": -15.0, "participant": -6.0}  # offset of the hairline plane (mm): lower = more hair


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
    The mouth is drawn with exactly :func:`lip_distance` and :func:`mouth_corner_distance`.
    """
    from avflow_cli.render.avatar_drawing import draw_frames

    if palette not in PALETTES:
        raise AvflowError(f"unknown palette {palette!r}; choose from {sorted(PALETTES)}")
    p = clip_params(np.atleast_2d(params))  # (T, P)
    rot, trans = _pose_arrays(head_pose, p.shape[0])
    yield from draw_frames(p, lip_distance(p), mouth_corner_distance(p), rot, trans, int(size), PALETTES[palette],
                           PARAM_INDEX, HAIRLINES[palette])


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
    from avflow_cli.render.mp4 import encode_mp4

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
    frames = render_frames(params, head_pose, size, palette=palette)
    return encode_mp4(path, frames, size, fps, audio=audio, audio_sr=audio_sr, crf=crf)
