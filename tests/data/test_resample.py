"""Resampling by timestamps: exact on linear signals, round trips, masks, quaternions, lengths."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from avflow_cli import constants as K
from avflow_cli.data import resample as rs
from avflow_cli.errors import AvflowError


def test_linear_signals_are_exact() -> None:
    n = 300
    t = np.arange(n) / K.FACE_RATE
    values = np.stack([2 * t + 1, -t], 1).astype(np.float32)  # (N, 2)
    out = rs.resample_to_fps(values, K.FACE_RATE)
    assert len(out) == int(np.floor(n / K.FACE_RATE * K.FPS))
    tt = np.arange(len(out)) / K.FPS
    inside = tt <= t[-1]
    np.testing.assert_allclose(out[inside], np.stack([2 * tt + 1, -tt], 1)[inside], atol=1e-5)


@pytest.mark.parametrize("rate", [K.FACE_RATE, K.TOKEN_RATE, 25.0])
def test_round_trip_of_smooth_signals(rate: float) -> None:
    t = np.arange(600) / rate
    x = np.sin(2 * np.pi * 0.7 * t)[:, None]
    up = rs.resample_to_fps(x, rate)
    back = rs.resample_to_fps(up, K.FPS, len(x), dst_rate=rate)
    np.testing.assert_allclose(back[:-3], x[:-3], atol=5e-3)  # two linear interpolations of a 0.7 Hz sine


def test_explicit_length_and_hold_at_end() -> None:
    out = rs.resample_to_fps(np.arange(10, dtype=np.float32), 10.0, 30, dst_rate=20.0)
    assert out.shape == (30,)
    assert out[-1] == 9.0 and out[1] == pytest.approx(0.5)


def test_mask_requires_both_neighbours() -> None:
    mask = np.ones(30, bool)
    mask[10] = False
    out = rs.resample_mask(mask, K.FACE_RATE)
    t = np.arange(len(out)) / K.FPS * K.FACE_RATE  # position in source frames
    assert not out[(t > 9) & (t < 11)].any()
    assert out[(t < 9) | (t > 11)].all()


def test_quaternions_stay_unit_and_continuous() -> None:
    angles = np.linspace(0, 3 * np.pi, 90)
    xyzw = Rotation.from_rotvec(np.stack([0 * angles, angles, 0 * angles], 1)).as_quat()
    wxyz = np.concatenate([xyzw[:, 3:], xyzw[:, :3]], 1)
    wxyz[::2] *= -1  # sign flips a naive lerp would average to zero
    out = rs.resample_quaternions(wxyz, K.FACE_RATE)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-6)
    assert (np.einsum("ni,ni->n", out[1:], out[:-1]) > 0.99).all()
    pose = rs.resample_headpose(np.concatenate([wxyz, np.ones((90, 3))], 1), K.FACE_RATE)
    assert pose.shape == (len(out), K.HEAD_POSE_DIM)


def test_common_length_trims_to_shortest_and_rejects_big_gaps() -> None:
    n = rs.common_length({"a": (300, 30.0), "b": (495, 50.0), "c": (861, K.FPS)})
    assert n == min(int(300 / 30 * K.FPS), int(495 / 50 * K.FPS), 861)
    with pytest.raises(AvflowError, match="differ in length by 2.00 s"):
        rs.common_length({"face_codes.npy": (300, 30.0), "audio.wav": (12 * 48000, 48000.0)}, source="S")


def test_empty_stream() -> None:
    with pytest.raises(AvflowError):
        rs.resample_to_fps(np.zeros((0, 3)), 30.0)


def test_fill_linear_interpolates_and_holds_edges() -> None:
    feats = np.array([[0.0], [9.0], [2.0], [9.0], [9.0], [8.0], [9.0]])
    valid = np.array([False, True, True, False, False, True, False])
    feats[~valid] = 0.0
    out = rs.fill_linear(feats, valid)
    np.testing.assert_allclose(out[:, 0], [9.0, 9.0, 2.0, 4.0, 6.0, 8.0, 8.0])


def test_fill_nearest_copies_the_nearest_good_row() -> None:
    rot = np.arange(6, dtype=np.float64)[:, None, None] * np.ones((1, 3, 3))  # (6, 3, 3) row k holds k
    good = np.array([False, True, False, True, False, False])
    assert rs.nearest_index(good).tolist() == [1, 1, 1, 3, 3, 3]  # row 2: a tie, the earlier row wins
    out = rs.fill_nearest(rot, good)
    assert out.shape == rot.shape and out[:, 0, 0].tolist() == [1, 1, 1, 3, 3, 3]
    np.testing.assert_array_equal(rs.fill_nearest(rot, np.zeros(6, bool)), rot)  # nothing to fill from
    with pytest.raises(AvflowError):
        rs.nearest_index(np.zeros(3, bool))
