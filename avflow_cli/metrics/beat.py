"""Beat Align Score between speech and motion (AV-Flow §4.1, Table 1 "BC_h", "BC_e").

The score is the Beat Align Score of AI Choreographer / AIST++ (Li et al., ICCV 2021), as
implemented in google-research/mint ``tools/calculate_beat_scores.py`` and reused by Bailando
(Siyao et al., CVPR 2022) and the talking-head/gesture literature for "beat consistency":

    BA = (1/|B_m|) Σ_{t ∈ B_m} exp(−min_{a ∈ B_a} (t − a)² / (2σ²))

with B_m the motion beats and B_a the audio beats; 0 when there are no motion beats (as mint).
The test-set score is the mean of the per-clip scores (as mint and Bailando).

Constants (from those implementations, converted from their 60 fps frames to seconds, then
to our ``FPS`` = 86.13 Hz frames):

* σ = 3 frames at 60 fps = **0.05 s** (mint ``alignment_score(..., sigma=3)``; Bailando
  ``exp(-min(d²)/2/9)``) → 4.31 frames here. EMAGE/BEAT use σ = 0.3 s instead; pass
  ``sigma_s=0.3`` to reproduce those numbers. (Bailando's code averages over audio beats
  instead of motion beats; the papers' formula, used here, averages over motion beats.)
* motion beats: local minima of the kinetic velocity, ``argrelextrema(v, np.less,
  order=10)`` at 60 fps in mint = a ±**1/6 s** neighbourhood → 14 frames here.
* audio beats: peaks of the onset strength of the *generated* speech, computed here from our
  log-mel the way ``librosa.onset.onset_strength`` + ``onset_detect`` do (mel power in dB with
  an 80 dB floor, mean positive first difference over bands, envelope scaled to [0, 1], peak
  picking with pre_max 30 ms, post_max 0 ms (+1 frame), pre_avg 100 ms, post_avg 100 ms
  (+1 frame), delta 0.07, wait 30 ms).

Kinetic velocity: face (BC_e) — ‖f_t − f_{t−1}‖₂ of the face codes; head (BC_h) — mean speed
of six points rigidly attached to the head at ±100 mm on each axis (rotation and translation in
one unit, like mint's mean joint speed; translation in the data's units, mm for avflow data).
"""

from __future__ import annotations

import numpy as np

from avflow_cli.constants import FPS
from avflow_cli.vision.headpose import quat_to_rotmat

BEAT_SIGMA_S = 3.0 / 60.0  # mint/Bailando σ = 3 frames at 60 fps
MOTION_BEAT_WINDOW_S = 10.0 / 60.0  # mint argrelextrema order = 10 frames at 60 fps
HEAD_POINT_RADIUS = 100.0  # mm: virtual points on the head for its kinetic velocity
ONSET_TOP_DB = 80.0  # librosa power_to_db default floor
PEAK_PRE_MAX_S, PEAK_POST_MAX_S = 0.03, 0.0  # librosa onset_detect defaults
PEAK_PRE_AVG_S, PEAK_POST_AVG_S = 0.10, 0.10
PEAK_WAIT_S, PEAK_DELTA = 0.03, 0.07
_DB_PER_LOG_MAG = 20.0 / np.log(10.0)  # natural-log magnitude -> power dB


# --- audio beats --------------------------------------------------------------------------------
def onset_strength(log_mel: np.ndarray) -> np.ndarray:
    """Spectral-flux onset envelope of a natural-log magnitude mel. shape (T, 80) -> (T,).

    env[t] = mean_k max(0, S_dB[t, k] − S_dB[t−1, k]), env[0] = 0, with S_dB the mel power in
    dB floored at (max − 80 dB).
    """
    s_db = _DB_PER_LOG_MAG * np.asarray(log_mel, dtype=np.float64)  # (T, 80)
    s_db = np.maximum(s_db, s_db.max() - ONSET_TOP_DB)
    flux = np.maximum(0.0, np.diff(s_db, axis=0)).mean(axis=1)  # (T-1,)
    return np.concatenate([[0.0], flux])  # (T,)


def _window_frames(seconds: float, fps: float) -> int:
    return int(seconds * fps)  # librosa floors: int(0.03 * sr // hop)


def peak_pick(env: np.ndarray, fps: float = FPS) -> np.ndarray:
    """Indices of onset peaks, librosa ``onset_detect`` rules (see module docstring). (T,) -> (K,)."""
    x = np.asarray(env, dtype=np.float64)
    n = len(x)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    x = x - x.min()
    if x.max() > 0:
        x = x / x.max()
    pre_max, post_max = _window_frames(PEAK_PRE_MAX_S, fps), _window_frames(PEAK_POST_MAX_S, fps) + 1
    pre_avg, post_avg = _window_frames(PEAK_PRE_AVG_S, fps), _window_frames(PEAK_POST_AVG_S, fps) + 1
    wait = _window_frames(PEAK_WAIT_S, fps)
    idx = np.arange(n)
    # moving max over [n - pre_max, n + post_max)
    padded = np.concatenate([np.full(pre_max, -np.inf), x, np.full(post_max, -np.inf)])
    windows = np.lib.stride_tricks.sliding_window_view(padded, pre_max + post_max)[:n]  # (T, W)
    is_max = x >= windows.max(axis=1)
    # moving mean over the valid part of [n - pre_avg, n + post_avg)
    csum = np.concatenate([[0.0], np.cumsum(x)])
    lo, hi = np.clip(idx - pre_avg, 0, n), np.clip(idx + post_avg, 0, n)
    mean = (csum[hi] - csum[lo]) / np.maximum(hi - lo, 1)
    candidates = idx[is_max & (x >= mean + PEAK_DELTA)]
    peaks: list[int] = []
    for c in candidates:  # few candidates: enforce the minimum gap sequentially
        if not peaks or c > peaks[-1] + wait:
            peaks.append(int(c))
    return np.asarray(peaks, dtype=np.int64)


def audio_beats(log_mel: np.ndarray, fps: float = FPS) -> np.ndarray:
    """Audio beat frames: peaks of the onset strength of speech given as log-mel (T, 80)."""
    return peak_pick(onset_strength(log_mel), fps)


# --- motion beats -------------------------------------------------------------------------------
def face_velocity(face: np.ndarray) -> np.ndarray:
    """Kinetic velocity of face codes ‖f_t − f_{t−1}‖₂, v[0] = v[1]. shape (T, F) -> (T,)."""
    f = np.asarray(face, dtype=np.float64)
    v = np.linalg.norm(np.diff(f, axis=0), axis=1)  # (T-1,)
    return np.concatenate([v[:1], v]) if len(v) else np.zeros(len(f))


def head_velocity(head_pose: np.ndarray, radius: float = HEAD_POINT_RADIUS) -> np.ndarray:
    """Kinetic velocity of the head: mean speed of 6 rigid points at ±radius. (T, 7) -> (T,)."""
    pose = np.asarray(head_pose, dtype=np.float64)
    rot = quat_to_rotmat(pose[:, :4])  # (T, 3, 3)
    pts = radius * np.concatenate([np.eye(3), -np.eye(3)])  # (6, 3)
    world = np.einsum("tij,pj->tpi", rot, pts) + pose[:, None, 4:7]  # (T, 6, 3)
    v = np.linalg.norm(np.diff(world, axis=0), axis=2).mean(axis=1)  # (T-1,)
    return np.concatenate([v[:1], v]) if len(v) else np.zeros(len(pose))


def motion_beats(velocity: np.ndarray, fps: float = FPS, window_s: float = MOTION_BEAT_WINDOW_S) -> np.ndarray:
    """Motion beat frames: strict local minima of the kinetic velocity within ±window_s. (T,) -> (K,)."""
    order = max(1, int(round(window_s * fps)))
    return strict_local_minima(np.asarray(velocity, dtype=np.float64), order)


def strict_local_minima(x: np.ndarray, order: int) -> np.ndarray:
    """Indices i with x[i] < x[j] for every j within ±order (indices clipped at the ends).

    The semantics of ``scipy.signal.argrelextrema(x, np.less, order=order)`` (mode "clip"),
    without importing scipy.signal. shape (T,) -> (K,).
    """
    n = len(x)
    idx = np.arange(n)
    keep = np.ones(n, dtype=bool)
    for k in range(1, order + 1):
        keep &= x < x[np.minimum(idx + k, n - 1)]
        keep &= x < x[np.maximum(idx - k, 0)]
    return idx[keep]


# --- score --------------------------------------------------------------------------------------
def beat_align_score(
    audio_beat_frames: np.ndarray,
    motion_beat_frames: np.ndarray,
    fps: float = FPS,
    sigma_s: float = BEAT_SIGMA_S,
) -> float:
    """Mean over motion beats of exp(−min distance² to an audio beat / 2σ²); distances in frames.

    0.0 when there are no motion beats (mint); each motion beat scores 0 without audio beats.
    """
    m = np.asarray(motion_beat_frames, dtype=np.float64)
    a = np.asarray(audio_beat_frames, dtype=np.float64)
    if m.size == 0 or a.size == 0:
        return 0.0
    sigma = sigma_s * fps  # frames
    d2 = np.min(np.square(m[:, None] - a[None, :]), axis=1)  # (K_m,)
    return float(np.mean(np.exp(-d2 / (2.0 * sigma * sigma))))


def bc_e(log_mel: np.ndarray, face: np.ndarray, fps: float = FPS, sigma_s: float = BEAT_SIGMA_S) -> float:
    """BC_e: Beat Align Score of speech (log-mel (T, 80)) against face-code motion (T, F)."""
    return beat_align_score(audio_beats(log_mel, fps), motion_beats(face_velocity(face), fps), fps, sigma_s)


def bc_h(log_mel: np.ndarray, head_pose: np.ndarray, fps: float = FPS, sigma_s: float = BEAT_SIGMA_S) -> float:
    """BC_h: Beat Align Score of speech (log-mel (T, 80)) against head motion (T, 7)."""
    return beat_align_score(audio_beats(log_mel, fps), motion_beats(head_velocity(head_pose), fps), fps, sigma_s)
