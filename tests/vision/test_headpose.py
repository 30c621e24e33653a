"""Rotation matrices ↔ quaternions, hemisphere continuity, orthonormality checks."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from avflow_cli.errors import AvflowError
from avflow_cli.vision import headpose as hp


def random_rotations(n: int, seed: int = 0) -> np.ndarray:
    return Rotation.random(n, random_state=seed).as_matrix()


def test_round_trip_matrix_quaternion_matrix() -> None:
    rot = random_rotations(500)
    quat = hp.rotmat_to_quat(rot, continuous=False)
    np.testing.assert_allclose(np.linalg.norm(quat, axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(hp.quat_to_rotmat(quat), rot, atol=1e-10)


def test_matches_scipy_up_to_sign_and_order() -> None:
    rot = random_rotations(200, seed=1)
    ours = hp.rotmat_to_quat(rot, continuous=False)
    xyzw = Rotation.from_matrix(rot).as_quat()
    ref = np.concatenate([xyzw[:, 3:], xyzw[:, :3]], 1)  # wxyz
    assert np.allclose(np.abs(np.einsum("ni,ni->n", ours, ref)), 1.0, atol=1e-10)


@pytest.mark.parametrize("axis", [[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0]])
def test_half_turns_are_exact(axis: list[float]) -> None:
    rot = Rotation.from_rotvec(np.pi * np.asarray(axis, float)[None] / np.linalg.norm(axis)).as_matrix()
    np.testing.assert_allclose(hp.quat_to_rotmat(hp.rotmat_to_quat(rot)), rot, atol=1e-12)


def test_continuity_across_sign_ambiguity() -> None:
    t = np.linspace(0, 4 * np.pi, 400)
    rot = Rotation.from_rotvec(np.stack([t, 0.3 * np.sin(t), 0 * t], 1)).as_matrix()  # spins past 2π
    q = hp.rotmat_to_quat(rot)
    assert (np.einsum("ni,ni->n", q[1:], q[:-1]) > 0).all()
    assert q[0, 0] >= 0
    flips = hp.rotmat_to_quat(rot, continuous=False)
    assert (np.einsum("ni,ni->n", flips[1:], flips[:-1]) < 0).any()  # the raw conversion does flip


def test_small_drift_is_repaired_large_is_an_error() -> None:
    rot = random_rotations(10)
    noisy = rot + np.random.default_rng(0).normal(scale=1e-3, size=rot.shape)
    fixed = hp.orthonormalize(noisy)
    np.testing.assert_allclose(np.einsum("nji,njk->nik", fixed, fixed), np.broadcast_to(np.eye(3), rot.shape), atol=1e-12)
    np.testing.assert_allclose(fixed, rot, atol=5e-3)
    scaled = rot.copy()
    scaled[3] *= 1.5
    with pytest.raises(AvflowError, match="head_rot.npy: 1 rotation matrices are not orthonormal .*frame 3"):
        hp.orthonormalize(scaled, source="head_rot.npy")
    mirrored = rot.copy()
    mirrored[5, :, 0] *= -1
    with pytest.raises(AvflowError, match="reflection"):
        hp.orthonormalize(mirrored)
    with pytest.raises(AvflowError, match=r"\(N, 3, 3\)"):
        hp.orthonormalize(np.zeros((4, 2, 3)))


def test_headpose_from_rt_with_lost_tracking() -> None:
    rot = random_rotations(20)
    trans = np.random.default_rng(0).normal(size=(20, 3))
    rot[7] = np.nan
    trans[9] = np.nan
    pose, tracked = hp.headpose_and_tracked(rot, trans)
    np.testing.assert_array_equal(hp.headpose_from_rt(rot, trans), pose)
    assert pose.shape == (20, 7) and pose.dtype == np.float32 and np.isfinite(pose).all()
    assert tracked.tolist() == [i not in (7, 9) for i in range(20)]
    np.testing.assert_allclose(pose[:, 4:][tracked], trans[tracked], atol=1e-6)
    with pytest.raises(AvflowError, match="Inf"):
        hp.headpose_from_rt(np.where(np.isnan(rot), np.inf, rot), trans)
    with pytest.raises(AvflowError, match="translations"):
        hp.headpose_from_rt(rot, trans[:5])


def test_rt_matrices_accepted() -> None:
    rot = random_rotations(6)
    rt = np.concatenate([rot, np.ones((6, 3, 1))], axis=2)  # (N, 3, 4)
    r, t = hp.split_rt(rt)
    np.testing.assert_array_equal(r, rot)
    np.testing.assert_array_equal(t, np.ones((6, 3)))


def test_quat_to_rotmat_any_leading_shape_and_one_implementation() -> None:
    """(..., 4) → (..., 3, 3), unnormalised input allowed; rendering, demo avatar and beat metric share it."""
    from avflow_cli.metrics import beat
    from avflow_cli.render import camera
    from avflow_cli.render import demo_avatar

    rot = random_rotations(6, seed=3)
    xyzw = Rotation.from_matrix(rot).as_quat()
    quat = 3.0 * np.concatenate([xyzw[:, 3:], xyzw[:, :3]], 1).reshape(2, 3, 4)  # wxyz, norm 3
    np.testing.assert_allclose(hp.quat_to_rotmat(quat), rot.reshape(2, 3, 3, 3), atol=1e-12)
    np.testing.assert_allclose(hp.quat_to_rotmat(np.zeros(4)), np.eye(3))  # single zero quaternion → identity
    assert camera.quat_to_rotmat is demo_avatar.quat_to_rotmat is beat.quat_to_rotmat is hp.quat_to_rotmat
