"""Face detection and square face crops for SMIRK, with a detector that ships offline.

OpenCV 4.x wheels ship Haar cascades (``cv2.data.haarcascades``); 5.x dropped them, hence the
``opencv-python-headless<5`` pin. Per frame the largest detected face is kept; its box
(centre and side) is smoothed over time with an exponential moving average, so crops do not
jitter, and the smoothing restarts after a jump (a different face or a missed stretch).
Frames without a face are marked invalid.

SMIRK's own crop (georgeretsi/smirk ``demo.py:crop_face``) takes the MediaPipe landmark box,
side ``(w + h) / 2 × scale`` around its centre, with scale 1.4 in the demo (1.2–1.8 in
training, 1.6 at test time), warped to 224 × 224 with zero fill. The Haar box stands in for
the landmark box here; ``DEFAULT_CROP_SCALE`` keeps the demo's 1.4.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avflow_cli.errors import AvflowError

CASCADE_FILE = "haarcascade_frontalface_default.xml"
DEFAULT_CROP_SCALE = 1.4  # SMIRK demo.py: crop side = 1.4 × landmark-box size
DETECT_MAX_SIDE = 480  # frames are downscaled to this longest side for detection (speed)
SMOOTH_ALPHA = 0.5  # EMA weight of the new box; 1.0 disables smoothing
JUMP_FRACTION = 0.5  # centre moved more than this × box side → restart smoothing
MIN_FACE_FRACTION = 0.08  # smallest face side searched, as a fraction of the shorter frame side
NEAR_WINDOW = 2.5  # search window around the tracked face, in face sides
NEAR_FACE_PIXELS = 96  # the tracked face is searched at about this width (speed)
NEAR_MIN_FRACTION = 0.25  # inside the window, faces smaller than this fraction are ignored


def cascade_path() -> Path:
    """Path of OpenCV's frontal-face Haar cascade; a clear error when the wheel lacks it."""
    import cv2

    folder = getattr(getattr(cv2, "data", None), "haarcascades", None)
    if folder is None or not (Path(folder) / CASCADE_FILE).is_file():
        raise AvflowError(
            f"OpenCV's {CASCADE_FILE} is missing (opencv {cv2.__version__}); install "
            "'opencv-python-headless>=4.8,<5' (5.x no longer ships the Haar cascades)"
        )
    return Path(folder) / CASCADE_FILE


@dataclass
class FaceBox:
    """A square face region: centre (cx, cy) and side, in pixels of the full frame."""

    cx: float
    cy: float
    side: float

    @classmethod
    def from_xywh(cls, x: float, y: float, w: float, h: float) -> FaceBox:
        return cls(x + w / 2.0, y + h / 2.0, (w + h) / 2.0)


class FaceDetector:
    """Haar-cascade detector returning every face box (x, y, w, h) in full-frame pixels."""

    def __init__(self, *, min_face_fraction: float = MIN_FACE_FRACTION, max_side: int = DETECT_MAX_SIDE) -> None:
        import cv2

        self._cv2 = cv2
        self.classifier = cv2.CascadeClassifier(str(cascade_path()))
        if self.classifier.empty():
            raise AvflowError(f"{cascade_path()}: OpenCV could not load the Haar cascade")
        self.min_face_fraction = min_face_fraction
        self.max_side = max_side

    def _run(self, rgb: np.ndarray, max_side: int, min_fraction: float) -> np.ndarray:
        """Cascade on ``rgb`` scaled to ≤ ``max_side``; boxes (K, 4) in ``rgb`` pixels."""
        cv2 = self._cv2
        h, w = rgb.shape[:2]
        scale = min(1.0, max_side / max(h, w))
        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)  # (H, W)
        if scale < 1.0:
            gray = cv2.resize(gray, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
        gray = cv2.equalizeHist(gray)
        min_side = max(16, int(min_fraction * min(gray.shape)))
        if min_side > min(gray.shape):
            return np.zeros((0, 4))
        boxes = self.classifier.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(min_side, min_side))
        if len(boxes) == 0:
            return np.zeros((0, 4))
        return np.asarray(boxes, dtype=np.float64) / scale  # (K, 4)

    def detect(self, rgb: np.ndarray, near: FaceBox | None = None) -> np.ndarray:
        """Faces in one RGB frame (H, W, 3) uint8 → (K, 4) float boxes x, y, w, h.

        With ``near`` (the face tracked in the previous frames) only a window of
        ``NEAR_WINDOW`` × its side around it is searched first, at a resolution where the face
        is about ``NEAR_FACE_PIXELS`` wide; the whole frame is searched when that finds nothing.
        """
        if near is not None:
            h, w = rgb.shape[:2]
            half = NEAR_WINDOW * near.side / 2.0
            x0, y0 = int(max(0, near.cx - half)), int(max(0, near.cy - half))
            x1, y1 = int(min(w, near.cx + half)), int(min(h, near.cy + half))
            if x1 - x0 >= 24 and y1 - y0 >= 24:
                side = max(x1 - x0, y1 - y0)
                max_side = int(min(side, NEAR_FACE_PIXELS * NEAR_WINDOW))
                boxes = self._run(rgb[y0:y1, x0:x1], max_side, NEAR_MIN_FRACTION)
                if len(boxes):
                    return boxes + np.array([x0, y0, 0.0, 0.0])
        return self._run(rgb, self.max_side, self.min_face_fraction)


def largest_box(boxes: np.ndarray) -> np.ndarray | None:
    """The box (4,) with the largest area among (K, 4), or None when K == 0."""
    if len(boxes) == 0:
        return None
    return boxes[int(np.argmax(boxes[:, 2] * boxes[:, 3]))]


class BoxSmoother:
    """Exponential moving average of the face box; restarts on a jump or after ``max_gap`` misses."""

    def __init__(self, alpha: float = SMOOTH_ALPHA, jump_fraction: float = JUMP_FRACTION, max_gap: int = 5) -> None:
        if not 0.0 < alpha <= 1.0:
            raise AvflowError(f"smoothing alpha must be in (0, 1], got {alpha}")
        self.alpha = alpha
        self.jump_fraction = jump_fraction
        self.max_gap = max_gap
        self.state: FaceBox | None = None
        self.misses = 0

    def update(self, box: np.ndarray | None) -> FaceBox | None:
        """Feed this frame's detection (x, y, w, h) or None; return the smoothed box or None."""
        if box is None:
            self.misses += 1
            if self.misses > self.max_gap:
                self.state = None
            return None
        new = FaceBox.from_xywh(*box)
        s = self.state
        if s is None or np.hypot(new.cx - s.cx, new.cy - s.cy) > self.jump_fraction * s.side:
            self.state = new
        else:
            a = self.alpha
            self.state = FaceBox(
                a * new.cx + (1 - a) * s.cx, a * new.cy + (1 - a) * s.cy, a * new.side + (1 - a) * s.side
            )
        self.misses = 0
        return self.state


def crop_square(rgb: np.ndarray, box: FaceBox, *, size: int, scale: float = DEFAULT_CROP_SCALE) -> np.ndarray:
    """Square crop of side ``scale × box.side`` around the box centre, resized to (size, size, 3).

    Regions outside the frame are filled with black, as SMIRK's ``skimage.warp`` crop does.
    """
    import cv2

    side = box.side * scale
    x0, y0 = box.cx - side / 2.0, box.cy - side / 2.0
    k = (size - 1) / side  # maps [x0, x0 + side] onto [0, size - 1], like SMIRK's DST_PTS
    mat = np.array([[k, 0.0, -k * x0], [0.0, k, -k * y0]], dtype=np.float64)  # (2, 3)
    return cv2.warpAffine(rgb, mat, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def face_crops(
    batches: Iterable[np.ndarray],
    *,
    size: int,
    scale: float = DEFAULT_CROP_SCALE,
    detector: FaceDetector | None = None,
    smoother: BoxSmoother | None = None,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """For each batch of RGB frames (B, H, W, 3) yield (crops (B, size, size, 3), valid (B,) bool).

    Invalid frames (no face) get an all-black crop; callers must ignore them using ``valid``.
    """
    detector = detector or FaceDetector()
    smoother = smoother or BoxSmoother()
    for frames in batches:
        crops = np.zeros((len(frames), size, size, 3), dtype=np.uint8)  # (B, S, S, 3)
        valid = np.zeros(len(frames), dtype=bool)  # (B,)
        for i, frame in enumerate(frames):
            box = smoother.update(largest_box(detector.detect(frame, near=smoother.state)))
            if box is not None:
                crops[i] = crop_square(frame, box, size=size, scale=scale)
                valid[i] = True
        yield crops, valid
