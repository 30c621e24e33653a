"""Offline participant face features: dlib's 68-point landmarks mapped to the demo's SMIRK layout.

SMIRK (``avflow_cli.vision.smirk``) needs its released weights. Without them this tracker stands
in: dlib's HOG face detector (in the ``dlib-bin`` wheel) and its 68-point shape predictor (the
model file ships inside the ``face_recognition_models`` package) give landmarks per frame; the
landmarks, de-rolled and scaled by the inter-ocular distance, are mapped by a linear (ridge)
calibration to the demo avatar's visible face parameters (lip gap, lip rounding, smile, brows,
blinks) and head rotation (pitch, yaw, roll); those go through the demo corpus's own
``participant_smirk`` map, so the result has exactly the 56-d layout and meaning the demo model
was trained on (expression 50 | jaw 3 | head rotation 3).

The calibration is fitted on frames of the demo avatar's renderer with known parameters
(``python -m avflow_cli.participant.face_tracker --calibrate`` rewrites
``resources/face_tracker_calibration.json``). On real faces the same landmark geometry drives it
(smiles widen the mouth, jaws open the lips, heads turn the nose), but the scale of each
parameter is the cartoon's: it is a substitute for SMIRK, said so in every output's metadata, not
SMIRK itself. Gaze cannot be seen in 68 landmarks and stays neutral; lip closure is folded into
the visible lip gap (jaw_open = gap, lip_closure = 0).

Letters: N frames, 68 landmarks.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from avflow_cli.errors import AvflowError, InputFileError

TRACKER_NAME = "dlib 68-point landmarks → demo-avatar parameters → demo SMIRK layout (offline substitute for SMIRK)"
CALIBRATION_FILE = "face_tracker_calibration.json"
LANDMARK_FILE = "shape_predictor_68_face_landmarks.dat"
TARGETS = ("gap", "lip_round", "smile", "brow_raise", "blink_l", "blink_r", "pitch", "yaw", "roll")
MAX_HOLD = 15  # frames a lost face keeps its last box (the shape predictor fits inside it)
RIDGE = 10.0
INSTALL_HINT = "pip install dlib-bin face-recognition-models (both are avflow dependencies)"


# --- landmarks ------------------------------------------------------------------------------------
def landmark_model_path() -> Path:
    """The 68-point shape-predictor file shipped inside the ``face_recognition_models`` package."""
    from avflow_cli.checkpoints import package_dir

    folder = package_dir("face_recognition_models")
    path = folder / "models" / LANDMARK_FILE if folder is not None else None
    if path is None or not path.is_file():
        raise AvflowError(f"the offline face tracker needs {LANDMARK_FILE} from face_recognition_models; {INSTALL_HINT}")
    return path


@lru_cache(maxsize=1)
def _dlib_models() -> tuple[Any, Any]:
    try:
        import dlib
    except ImportError as err:
        raise AvflowError(f"the offline face tracker needs dlib ({err}); {INSTALL_HINT}") from err
    return dlib.get_frontal_face_detector(), dlib.shape_predictor(str(landmark_model_path()))


class LandmarkTracker:
    """68 landmarks per RGB frame: detect (HOG, then OpenCV's Haar cascade); a missed frame reuses the last box."""

    def __init__(self) -> None:
        self.detector, self.predictor = _dlib_models()
        self._haar: Any = None
        self._last: Any = None  # the previous frame's face box (dlib.rectangle)
        self._missed = 0

    def _detect(self, rgb: np.ndarray) -> Any:
        import dlib

        rects = self.detector(rgb, 1)
        if rects:
            return max(rects, key=lambda r: r.area())
        if self._haar is None:
            from avflow_cli.vision.face_detect import FaceDetector

            self._haar = FaceDetector()
        from avflow_cli.vision.face_detect import largest_box

        box = largest_box(self._haar.detect(rgb))
        if box is None:
            return None
        x, y, w, h = (int(v) for v in box)
        return dlib.rectangle(x, y, x + w, y + h)

    def __call__(self, rgb: np.ndarray) -> np.ndarray | None:
        """Landmarks (68, 2) in pixels, or None when no face is found."""
        rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
        rect = self._detect(rgb)
        if rect is None and self._last is not None and self._missed < MAX_HOLD:
            rect, self._missed = self._last, self._missed + 1  # a missed detection: the face has barely moved
        elif rect is not None:
            self._missed = 0
        if rect is None:
            self._last = None
            return None
        self._last = rect
        shape = self.predictor(rgb, rect)
        pts = np.array([[shape.part(k).x, shape.part(k).y] for k in range(68)], dtype=np.float64)  # (68, 2)
        if min(pts.max(axis=0) - pts.min(axis=0)) < 8 or not np.isfinite(pts).all():  # collapsed fit
            return None
        return pts


def normalized_landmarks(landmarks: np.ndarray) -> np.ndarray:
    """Pose-and-scale-free landmark features (N, 137): de-rolled, eye-centred, ÷ inter-ocular
    distance, flattened, plus the roll angle itself."""
    L = np.asarray(landmarks, dtype=np.float64)  # (N, 68, 2)
    left, right = L[:, 36:42].mean(axis=1), L[:, 42:48].mean(axis=1)  # (N, 2)
    iod = np.maximum(np.linalg.norm(right - left, axis=1), 1e-6)  # (N,)
    roll = np.arctan2(right[:, 1] - left[:, 1], right[:, 0] - left[:, 0])  # (N,)
    c, s = np.cos(-roll), np.sin(-roll)
    rot = np.stack([np.stack([c, -s], axis=1), np.stack([s, c], axis=1)], axis=1)  # (N, 2, 2)
    centred = L - ((left + right) / 2)[:, None]  # (N, 68, 2)
    flat = np.einsum("nij,nkj->nki", rot, centred) / iod[:, None, None]  # (N, 68, 2)
    return np.concatenate([flat.reshape(len(L), -1), roll[:, None]], axis=1)  # (N, 137)


# --- calibration ----------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def load_calibration() -> dict[str, np.ndarray]:
    text = resources.files("avflow_cli.resources").joinpath(CALIBRATION_FILE).read_text()
    obj = json.loads(text)
    return {k: np.asarray(obj[k], dtype=np.float64) for k in ("mean", "std", "weights")} | {"meta": obj.get("meta", {})}


def predict_targets(landmarks: np.ndarray, calibration: dict[str, Any] | None = None) -> np.ndarray:
    """Calibrated targets (N, 9) in ``TARGETS`` order from landmarks (N, 68, 2)."""
    cal = calibration or load_calibration()
    z = (normalized_landmarks(landmarks) - cal["mean"]) / cal["std"]  # (N, 137)
    return np.concatenate([z, np.ones((len(z), 1))], axis=1) @ cal["weights"]  # (N, 9)


def targets_to_features(targets: np.ndarray) -> np.ndarray:
    """Demo participant features (N, 56) from targets (N, 9): parameters → the corpus's SMIRK map."""
    from avflow_cli.data.demo_corpus import participant_smirk
    from avflow_cli.render.demo_avatar import NEUTRAL_PARAMS, PARAM_INDEX, clip_params, euler_to_quat, quat_to_rotmat

    t = np.asarray(targets, dtype=np.float64)
    params = np.repeat(NEUTRAL_PARAMS[None].astype(np.float64), len(t), axis=0)  # (N, P)
    params[:, PARAM_INDEX["jaw_open"]] = t[:, 0]
    for k, name in enumerate(TARGETS[1:6], start=1):
        params[:, PARAM_INDEX[name]] = t[:, k]
    params = clip_params(params)
    rot = quat_to_rotmat(euler_to_quat(t[:, 6], t[:, 7], t[:, 8]))  # (N, 3, 3)
    return participant_smirk(params, rot)  # (N, 56)


def params_from_features(features: np.ndarray) -> np.ndarray:
    """Demo face parameters (N, P) back from demo-layout features (N, 56): the least-squares inverse
    of ``participant_smirk``'s expression map (full column rank), for checks and evaluation."""
    from avflow_cli.data.demo_corpus import SMIRK_SEED
    from avflow_cli.render.demo_avatar import NEUTRAL_PARAMS, NUM_PARAMS

    basis = np.random.default_rng(SMIRK_SEED).normal(0.0, 0.5, size=(50, NUM_PARAMS))  # as participant_smirk
    expr = np.asarray(features, np.float64)[:, :50]  # (N, 50)
    coef, *_ = np.linalg.lstsq(basis, expr.T, rcond=None)  # (P, N)
    return (coef.T + NEUTRAL_PARAMS).astype(np.float32)


def calibration_frames(n: int, seed: int, size: int = 192) -> tuple[np.ndarray, Iterator[np.ndarray]]:
    """Known targets (n, 9) and the demo avatar frames showing them (participant palette)."""
    from avflow_cli.render.demo_avatar import (
        DEFAULT_DISTANCE_MM, FACE_PARAM_RANGES, NUM_PARAMS, PARAM_INDEX, euler_to_quat, render_frame,
    )

    rng = np.random.default_rng(seed)
    params = rng.uniform(FACE_PARAM_RANGES[:, 0], FACE_PARAM_RANGES[:, 1], size=(n, NUM_PARAMS))
    params[:, :7] *= rng.random((n, 7)) < 0.6  # many parameters at rest, as in real footage
    euler = rng.uniform(-1, 1, size=(n, 3)) * np.radians([12.0, 15.0, 8.0])  # pitch, yaw, roll
    P = PARAM_INDEX
    gap = params[:, P["jaw_open"]] * (1 - params[:, P["lip_closure"]])
    cols = [params[:, P[name]] for name in TARGETS[1:6]]
    targets = np.column_stack([gap, *cols, euler])  # (n, 9)

    def frames() -> Iterator[np.ndarray]:
        for i in range(n):
            pose = np.concatenate([euler_to_quat(*euler[i]), [0.0, 0.0, DEFAULT_DISTANCE_MM]])
            yield render_frame(params[i], pose, size, palette="participant")

    return targets, frames()


def landmarks_of_stills(frames: Iterable[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Landmarks (N, 68, 2) and found (N,) for independent images (a fresh tracker per image)."""
    pts, found = [], []
    for rgb in frames:
        lm = LandmarkTracker()(rgb)
        found.append(lm is not None)
        pts.append(lm if lm is not None else np.zeros((68, 2)))
    return np.asarray(pts), np.asarray(found)


def fit_calibration(n: int = 1500, seed: int = 1, size: int = 192) -> dict[str, Any]:
    """Ridge map normalised landmarks → targets, fitted on rendered demo-avatar frames."""
    targets, frames = calibration_frames(n, seed, size)
    pts, found = landmarks_of_stills(frames)
    X = normalized_landmarks(pts[found])
    mean, std = X.mean(axis=0), X.std(axis=0) + 1e-6
    Z = np.concatenate([(X - mean) / std, np.ones((len(X), 1))], axis=1)  # (n, 138)
    W = np.linalg.solve(Z.T @ Z + RIDGE * np.eye(Z.shape[1]), Z.T @ targets[found])  # (138, 9)
    meta = {"frames": int(n), "found": int(found.sum()), "seed": seed, "size": size, "ridge": RIDGE,
            "targets": list(TARGETS)}
    return {"mean": mean.tolist(), "std": std.tolist(), "weights": W.tolist(), "meta": meta}


# --- video ----------------------------------------------------------------------------------------
def track_landmarks(path: str | Path, *, fps: float | None = None, show_progress: bool = False) -> tuple[np.ndarray, np.ndarray, float]:
    """Landmarks of every frame: (N, 68, 2) float64 pixels (zeros where no face), found (N,) bool, fps.

    ``fps`` resamples the video to that constant rate first (ffmpeg); default: the video's own.
    """
    from avflow_cli.console import progress
    from avflow_cli.vision.video import iter_frames, probe_video

    info = probe_video(path)
    rate = float(fps) if fps is not None else float(info.fps)
    total = int(round(info.duration * rate)) if info.duration > 0 else info.num_frames
    tracker = LandmarkTracker()
    pts, found = [], []
    with progress(transient=True) as bar:
        task = bar.add_task(f"face tracker {info.path.name}", total=total or None, status="")
        for batch in iter_frames(info.path, fps=fps, info=info):
            for rgb in batch:
                lm = tracker(rgb)
                found.append(lm is not None)
                pts.append(lm if lm is not None else np.zeros((68, 2)))
            if show_progress:
                bar.update(task, advance=len(batch))
    if not pts:
        raise InputFileError(info.path, "no frames decoded")
    return np.asarray(pts), np.asarray(found), rate


def track_video(path: str | Path, *, fps: float | None = None, show_progress: bool = False) -> tuple[np.ndarray, np.ndarray, float]:
    """Demo-layout participant features of every frame: (N, 56) float32, valid (N,) bool, fps.

    Faceless frames are filled from their neighbours (``valid`` says which were seen); a video
    with no face at all is an InputFileError. ``fps`` as in :func:`track_landmarks`.
    """
    from avflow_cli.data.resample import fill_linear

    pts, valid, rate = track_landmarks(path, fps=fps, show_progress=show_progress)
    if not valid.any():
        raise InputFileError(path, f"no face found in any of its {len(valid)} frames")
    feats = np.zeros((len(valid), 56), np.float32)
    feats[valid] = targets_to_features(predict_targets(pts[valid]))
    return fill_linear(feats, valid), valid, rate


def main() -> None:  # pragma: no cover - maintenance command
    import argparse

    parser = argparse.ArgumentParser(description="Refit the face tracker's calibration on demo-avatar renders.")
    parser.add_argument("--calibrate", action="store_true", required=True)
    parser.add_argument("--frames", type=int, default=1500)
    args = parser.parse_args()
    cal = fit_calibration(args.frames)
    out = Path(str(resources.files("avflow_cli.resources").joinpath(CALIBRATION_FILE)))
    out.write_text(json.dumps(cal))
    print(f"wrote {out}: {cal['meta']}")


if __name__ == "__main__":  # pragma: no cover
    main()
