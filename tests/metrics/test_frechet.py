"""Fréchet distance: zero on identical sets, closed forms, accumulation equals one-shot."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg

from avflow_cli.metrics.diversity import MomentStats, diversity, div_h, quat_to_rotvec_deg
from avflow_cli.metrics.frechet import GaussianStats, fd_e, frechet_distance


def test_identical_inputs_give_zero() -> None:
    x = np.random.default_rng(0).normal(size=(500, 16))
    assert fd_e(x, x) == pytest.approx(0.0, abs=1e-9)


def test_rank_deficient_identical_inputs_give_zero() -> None:
    x = np.random.default_rng(1).normal(size=(50, 3)) @ np.random.default_rng(2).normal(size=(3, 12))  # rank 3
    assert fd_e(x, x) == pytest.approx(0.0, abs=1e-6)


def test_closed_form_isotropic() -> None:
    # N(0, I) vs N(m, 4I) in D dims: |m|^2 + D + 4D - 2·2D = |m|^2 + D
    d = 5
    m = np.arange(d, dtype=float)
    fd = frechet_distance(np.zeros(d), np.eye(d), m, 4 * np.eye(d))
    assert fd == pytest.approx(m @ m + d)


def test_matches_scipy_sqrtm_formula() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(300, 6)), rng.normal(size=(300, 6)) @ rng.normal(size=(6, 6))
    mu1, mu2, c1, c2 = a.mean(0), b.mean(0), np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    ref = (mu1 - mu2) @ (mu1 - mu2) + np.trace(c1) + np.trace(c2) - 2 * np.trace(np.real(scipy.linalg.sqrtm(c1 @ c2)))
    assert fd_e(a, b) == pytest.approx(ref, rel=1e-6)


def test_accumulated_stats_equal_one_shot() -> None:
    rng = np.random.default_rng(4)
    parts = [rng.normal(size=(n, 4)) for n in (30, 50, 7)]
    acc = GaussianStats.of(parts[0]) + GaussianStats.of(parts[1]) + GaussianStats.of(parts[2])
    allx = np.concatenate(parts)
    np.testing.assert_allclose(acc.cov, np.cov(allx, rowvar=False), atol=1e-10)
    mom = MomentStats.of(parts[0]) + MomentStats.of(parts[1]) + MomentStats.of(parts[2])
    assert mom.diversity == pytest.approx(diversity(allx))
    assert diversity(allx) == pytest.approx(np.mean(np.std(allx, axis=0)))


def test_head_diversity_in_degrees() -> None:
    angles = np.radians([-10.0, 10.0])  # rotation about x by ±10°
    quat = np.stack([np.cos(angles / 2), np.sin(angles / 2), 0 * angles, 0 * angles], 1)
    np.testing.assert_allclose(quat_to_rotvec_deg(quat), [[-10, 0, 0], [10, 0, 0]], atol=1e-9)
    np.testing.assert_allclose(quat_to_rotvec_deg(-quat), [[-10, 0, 0], [10, 0, 0]], atol=1e-9)  # q ≡ -q
    pose = np.concatenate([quat, np.zeros((2, 3))], 1)
    assert div_h(pose) == pytest.approx(10.0 / 3)  # std of x is 10°, y and z are 0
