"""Mel cepstral distortion with dynamic time warping (AV-Flow §4.1, Tables 1-2 "MCD").

Mel cepstra: from our 80-band natural-log *magnitude* mel (docs/ARCHITECTURE.md §1), the cosine transform
gives the cepstrum on the mel-warped axis, scaled so that ln S(ω_k) = c₀ + 2 Σ_{m≥1} c_m
cos(m ω_k) at the band centres ω_k = π(k + ½)/80 (i.e. c = DCT-II(ln S) / (2·80)). This is
the definition of the mel-cepstrum (Fukada et al. 1992) sampled on the mel filterbank instead
of SPTK's all-pass warping. Waveforms are first turned into that mel (22 050 Hz).

    MCD = (10·√2 / ln 10) · sqrt( Σ_{m=1}^{M} (c_m − ĉ_m)² )          [dB], per frame pair

with the standard constant 10√2/ln10 ≈ 6.1418 (Kubichek 1993), **c₀ (energy) excluded**, and
M = 24 coefficients by default (order-24 mel-cepstra, the usual choice at 22 kHz). Frames of
generated and reference speech are aligned by DTW on the Euclidean distance of c₁..c_M
(steps (1,0), (0,1), (1,1), equal weights); the clip's MCD is the mean of the per-pair MCD over
the DTW path. The test-set MCD is the mean over clips.
"""

from __future__ import annotations

import numpy as np
import scipy.fft
import scipy.spatial.distance

from avflow_cli.constants import N_MELS

MCD_CONSTANT = 10.0 * np.sqrt(2.0) / np.log(10.0)  # ≈ 6.1418 dB per cepstral unit
DEFAULT_MCD_ORDER = 24  # c1..c24


def mel_cepstrum(log_mel: np.ndarray, order: int = DEFAULT_MCD_ORDER) -> np.ndarray:
    """Mel cepstra c₀..c_order of natural-log magnitude mel frames. shape (T, 80) -> (T, order + 1)."""
    log_mel = np.asarray(log_mel, dtype=np.float64)
    n_bands = log_mel.shape[1]
    if order >= n_bands:
        raise ValueError(f"cepstral order {order} must be below the number of mel bands {n_bands}")
    c = scipy.fft.dct(log_mel, type=2, axis=1, norm=None) / (2.0 * n_bands)  # (T, n_bands)
    return c[:, : order + 1]


def dtw_path(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Minimum-cost monotone alignment of a (N, M) local-cost matrix; returns index arrays (L,), (L,).

    Steps (1,0), (0,1), (1,1) with equal weights. The accumulated cost is filled one
    anti-diagonal at a time (each diagonal vectorised), then the path is traced back.
    """
    cost = np.asarray(cost, dtype=np.float32)  # float32: a 60 s clip pair needs 2 × 107 MB, not 2 × 214 MB
    n, m = cost.shape
    acc = np.full((n + 1, m + 1), np.inf, dtype=np.float32)
    acc[0, 0] = 0.0
    for k in range(2, n + m + 1):  # k = i + j in 1-based accumulated indices
        i = np.arange(max(1, k - m), min(n, k - 1) + 1)
        j = k - i
        best = np.minimum(np.minimum(acc[i - 1, j], acc[i, j - 1]), acc[i - 1, j - 1])
        acc[i, j] = cost[i - 1, j - 1] + best
    path_i, path_j = [n - 1], [m - 1]
    i, j = n, m
    while i > 1 or j > 1:
        moves = (acc[i - 1, j - 1], acc[i - 1, j], acc[i, j - 1])
        step = int(np.argmin(moves))
        if step == 0:
            i, j = i - 1, j - 1
        elif step == 1:
            i -= 1
        else:
            j -= 1
        path_i.append(i - 1)
        path_j.append(j - 1)
    return np.asarray(path_i[::-1]), np.asarray(path_j[::-1])


def mcd_dtw(gen_log_mel: np.ndarray, ref_log_mel: np.ndarray, order: int = DEFAULT_MCD_ORDER) -> float:
    """MCD [dB] of generated vs reference speech, both log-mel (T, 80), aligned by DTW."""
    if gen_log_mel.shape[1] != N_MELS or ref_log_mel.shape[1] != N_MELS:
        raise ValueError(f"MCD expects (T, {N_MELS}) log-mel inputs, got {gen_log_mel.shape}, {ref_log_mel.shape}")
    a = mel_cepstrum(gen_log_mel, order)[:, 1:]  # (N, M), c0 excluded
    b = mel_cepstrum(ref_log_mel, order)[:, 1:]  # (K, M)
    dist = scipy.spatial.distance.cdist(a, b)  # (N, K) Euclidean, exact 0 for equal frames
    pi, pj = dtw_path(dist)
    return float(MCD_CONSTANT * np.mean(dist[pi, pj]))


def mcd_dtw_wav(gen_wav: np.ndarray, gen_sr: int, ref_wav: np.ndarray, ref_sr: int,
                order: int = DEFAULT_MCD_ORDER) -> float:
    """MCD between two waveforms (mono), via our 22 050 Hz log-mel."""
    return mcd_dtw(wav_log_mel(gen_wav, gen_sr), wav_log_mel(ref_wav, ref_sr), order)


def wav_log_mel(wav: np.ndarray, sr: int) -> np.ndarray:
    """Mono waveform at any rate → our log-mel (T, 80) at 22 050 Hz."""
    from avflow_cli.audio.io import resample
    from avflow_cli.audio.mel import log_mel
    from avflow_cli.constants import SAMPLE_RATE

    x = resample(np.asarray(wav, dtype=np.float32), int(sr), SAMPLE_RATE)  # (N,)
    return log_mel(x).numpy().astype(np.float64)  # (T, 80)
