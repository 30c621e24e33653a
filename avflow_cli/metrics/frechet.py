"""Fréchet distance between Gaussian fits (AV-Flow §4.1, Table 1 "FD_e" on face expression codes).

Every ground-truth frame and every generated frame of the test set is one sample; each set is
fitted with a Gaussian N(μ, Σ) (Σ the unbiased covariance, as ``numpy.cov``) and

    FD = ‖μ₁ − μ₂‖² + tr(Σ₁) + tr(Σ₂) − 2·tr((Σ₁ Σ₂)^{1/2})

(the FID formula of Heusel et al. 2017, applied to face codes directly, as Audio2Photoreal's
``utils/eval.py`` does for its FD_g). Numerics: Σ₁Σ₂ is not symmetric, and ``sqrtm`` of it can
return complex noise on near-singular covariances. Since tr((Σ₁Σ₂)^{1/2}) =
tr((Σ₁^{1/2} Σ₂ Σ₁^{1/2})^{1/2}) and the inner matrix is symmetric PSD, we take Σ₁^{1/2} with
``scipy.linalg.sqrtm`` of the symmetrised covariance (real part, symmetrised again) and the
trace from the clipped eigenvalues of the symmetric product. The result is clipped at 0, so
identical inputs give 0 up to rounding.

Fits are built from sufficient statistics (count, Σx, Σxxᵀ) so clips can be accumulated one
by one and cached: :class:`GaussianStats`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg


@dataclass
class GaussianStats:
    """Running sums of samples (N, D): count n, Σx (D,), Σxxᵀ (D, D), in float64."""

    n: int
    s1: np.ndarray  # (D,)
    s2: np.ndarray  # (D, D)

    @classmethod
    def of(cls, x: np.ndarray) -> "GaussianStats":
        x = np.asarray(x, dtype=np.float64)  # (N, D)
        return cls(int(x.shape[0]), x.sum(0), x.T @ x)

    def __add__(self, other: "GaussianStats") -> "GaussianStats":
        return GaussianStats(self.n + other.n, self.s1 + other.s1, self.s2 + other.s2)

    @property
    def mean(self) -> np.ndarray:
        return self.s1 / max(self.n, 1)

    @property
    def cov(self) -> np.ndarray:
        """Unbiased covariance (D, D), like ``np.cov(x, rowvar=False)``."""
        if self.n < 2:
            raise ValueError(f"need at least 2 samples for a covariance, got {self.n}")
        mu = self.mean
        cov = (self.s2 - self.n * np.outer(mu, mu)) / (self.n - 1)
        return (cov + cov.T) / 2


def _psd_sqrt(a: np.ndarray) -> np.ndarray:
    """Square root of a symmetric PSD matrix via scipy.linalg.sqrtm, kept real and symmetric."""
    root = scipy.linalg.sqrtm((a + a.T) / 2)
    root = np.real(root)
    return (root + root.T) / 2


def frechet_distance(mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray, cov2: np.ndarray) -> float:
    """FD between N(mu1, cov1) and N(mu2, cov2); shapes (D,), (D, D)."""
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    cov1, cov2 = np.atleast_2d(np.asarray(cov1, np.float64)), np.atleast_2d(np.asarray(cov2, np.float64))
    if mu1.shape != mu2.shape or cov1.shape != cov2.shape:
        raise ValueError(f"Gaussians differ in dimension: {mu1.shape} vs {mu2.shape}")
    root1 = _psd_sqrt(cov1)  # (D, D)
    inner = root1 @ cov2 @ root1  # (D, D) symmetric PSD
    eig = np.linalg.eigvalsh((inner + inner.T) / 2)
    tr_covmean = float(np.sum(np.sqrt(np.clip(eig, 0.0, None))))
    diff = mu1 - mu2
    fd = float(diff @ diff + np.trace(cov1) + np.trace(cov2) - 2.0 * tr_covmean)
    return max(fd, 0.0)


def frechet_distance_stats(a: GaussianStats, b: GaussianStats) -> float:
    """FD between the Gaussian fits of two accumulated sample sets."""
    return frechet_distance(a.mean, a.cov, b.mean, b.cov)


def fd_e(true_codes: np.ndarray, gen_codes: np.ndarray) -> float:
    """FD_e: Fréchet distance of Gaussian fits of ground-truth vs generated face codes (N, F)."""
    return frechet_distance_stats(GaussianStats.of(true_codes), GaussianStats.of(gen_codes))
