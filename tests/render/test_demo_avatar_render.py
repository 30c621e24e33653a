"""The demo avatar's 512² preview shows every parameter the data carries, measured in pixels."""

from __future__ import annotations

import numpy as np
import pytest

from avflow_cli.render import avatar_drawing as draw
from avflow_cli.render import demo_avatar as da

SIZE = 512
PX_PER_MM_MOUTH = draw.FOCAL_PER_PX * SIZE / (1000.0 - 77.0)  # the mouth sits ~77 mm in front of the head centre


def _params(**values: float) -> np.ndarray:
    row = da.NEUTRAL_PARAMS.copy()
    for name, value in values.items():
        row[da.PARAM_INDEX[name]] = value
    return row


def _pose(pitch: float = 0.0, yaw: float = 0.0, roll: float = 0.0, t=(0.0, 0.0, 1000.0)) -> np.ndarray:
    return np.concatenate([da.euler_to_quat(np.array(pitch), np.array(yaw), np.array(roll)), t])


def _mask(img: np.ndarray, *names: str, tol: int = 12) -> np.ndarray:
    out = np.zeros(img.shape[:2], bool)
    for name in names:
        out |= np.abs(img.astype(int) - np.array(da.PALETTES["actor"][name])).sum(axis=2) < tol
    return out


def _frame(pose: np.ndarray | None = None, **values: float) -> np.ndarray:
    return da.render_frame(_params(**values), pose, SIZE)


def test_preview_is_512_pixels_by_default() -> None:
    img = da.render_frame(da.NEUTRAL_PARAMS)
    assert img.shape == (512, 512, 3) and img.dtype == np.uint8
    assert _mask(img, "hair").sum() > 5000 and _mask(img, "shirt").sum() > 5000  # hair and shoulders in view


@pytest.mark.parametrize("jaw", [0.5, 1.0])
def test_mouth_opening_in_pixels_is_the_exact_lip_distance(jaw: float) -> None:
    img = _frame(jaw_open=jaw)
    upper = np.flatnonzero(_mask(img, "lip_dark")[:, SIZE // 2])  # the upper lip in the centre column
    lower = np.flatnonzero(_mask(img, "lip")[:, SIZE // 2])
    height = lower.min() - upper.max() - 1  # pixels between the inner lip edges
    expected = float(da.lip_distance(_params(jaw_open=jaw))) * PX_PER_MM_MOUTH
    assert abs(height - expected) <= 3.0, (height, expected)


def test_lip_closure_shuts_the_mouth_and_rounding_narrows_it() -> None:
    shut = _frame(jaw_open=1.0, lip_closure=1.0)  # a bilabial with the jaw open: lips pressed together
    upper = np.flatnonzero(_mask(shut, "lip_dark")[:, SIZE // 2])
    lower = np.flatnonzero(_mask(shut, "lip")[:, SIZE // 2])
    assert lower.min() - upper.max() - 1 <= 5  # only the (anti-aliased) line between the lips
    assert _mask(shut, "teeth", "tongue")[SIZE // 2:].sum() == 0  # no teeth or tongue below the eyes

    def width(img: np.ndarray) -> int:
        cols = np.flatnonzero(_mask(img, "lip", "lip_dark", tol=30).any(axis=0))
        return int(cols.max() - cols.min() + 1)

    neutral, smile, rounded = width(_frame()), width(_frame(smile=1.0)), width(_frame(lip_round=1.0))
    mm = PX_PER_MM_MOUTH * 0.97  # the corners sit a little further back than the centre
    assert abs((smile - neutral) - da.SMILE_WIDEN_MM * mm) <= 4, (smile, neutral)
    assert abs((neutral - rounded) - da.ROUND_NARROW_MM * mm) <= 4, (neutral, rounded)


def test_smile_raises_the_corners_and_narrows_the_eyes() -> None:
    def corner_row(img: np.ndarray) -> float:
        lips = _mask(img, "lip", "lip_dark", tol=30)
        cols = np.flatnonzero(lips.any(axis=0))
        edge = lips[:, cols.min():cols.min() + 4]
        return float(np.flatnonzero(edge.any(axis=1)).mean())

    neutral, smile = _frame(), _frame(smile=1.0)
    assert corner_row(smile) < corner_row(neutral) - 5
    assert _mask(smile, "eye", tol=8).sum() < 0.85 * _mask(neutral, "eye", tol=8).sum()


def test_blinks_close_one_eye_at_a_time() -> None:
    left, right = slice(0, SIZE // 2), slice(SIZE // 2, SIZE)
    open_ = _mask(_frame(), "eye", tol=8)
    blink = _mask(_frame(blink_l=1.0), "eye", tol=8)
    assert open_[:, left].sum() > 60 and blink[:, left].sum() < 0.05 * open_[:, left].sum()
    assert abs(int(blink[:, right].sum()) - int(open_[:, right].sum())) <= 5


def test_brows_rise_and_gaze_moves_the_irises() -> None:
    def centre(mask: np.ndarray) -> np.ndarray:
        ys, xs = np.nonzero(mask)
        return np.array([xs.mean(), ys.mean()])

    up = centre(_mask(_frame(brow_raise=1.0), "brow")) - centre(_mask(_frame(), "brow"))
    assert up[1] < -10 and abs(up[0]) < 2
    right = centre(_mask(_frame(gaze_x=1.0), "iris")) - centre(_mask(_frame(), "iris"))
    down = centre(_mask(_frame(gaze_y=1.0), "iris")) - centre(_mask(_frame(), "iris"))
    assert right[0] > 5 and abs(right[1]) < 1.5 and down[1] > 1


def test_head_rotation_shows_depth_and_translation_moves_the_head() -> None:
    def centre(mask: np.ndarray) -> np.ndarray:
        ys, xs = np.nonzero(mask)
        return np.array([xs.mean(), ys.mean()])

    def eyes_and_nose(img: np.ndarray) -> tuple[int, int, float]:
        """Iris pixels of the image-left and image-right eye; nose minus the eyes' midpoint (x, px)."""
        iris = _mask(img, "iris")
        split = int(centre(iris)[0])
        left, right = centre(iris[:, :split])[0], centre(iris[:, split:])[0] + split
        nose = _mask(img, "nostril", tol=30)
        nose[: int(centre(iris)[1]) + 30] = False  # AA pixels of the lashes pass through the nostril colour
        return int(iris[:, :split].sum()), int(iris[:, split:].sum()), float(centre(nose)[0] - 0.5 * (left + right))

    front, turned = _frame(), _frame(_pose(yaw=0.3))
    near, far, offset = eyes_and_nose(front)
    assert abs(near - far) <= 3 and abs(offset) < 1.0
    far, near, offset = eyes_and_nose(turned)  # turned toward image left: the left eye is the far one
    assert far < 0.8 * near  # foreshortened on the far side of the head
    assert offset < -1.0  # the nose stands out in front of the eyes and swings further
    hair_front = _mask(front, "hair").sum()
    assert _mask(_frame(_pose(pitch=0.4)), "hair").sum() > 1.2 * hair_front  # the top of the head comes into view
    moved = centre(_mask(_frame(_pose(t=(80.0, -40.0, 1000.0))), "hair")) - centre(_mask(front, "hair"))
    assert moved[0] > 20 and moved[1] < -10
    # shoulders follow translation, not rotation
    shirt_front, shirt_turned = _mask(front, "shirt"), _mask(_frame(_pose(yaw=0.4)), "shirt")
    assert (shirt_front ^ shirt_turned).sum() < 0.02 * shirt_front.sum()


def test_the_back_of_the_head_has_no_face() -> None:
    back = _frame(_pose(yaw=np.pi))
    assert _mask(back, "iris").sum() == 0 and _mask(back, "lip", "lip_dark", tol=30).sum() == 0
    assert _mask(back, "hair").sum() > 5000
