"""The demo avatar's head motion: slow drift, loudness-driven lifts and turns, nods while listening.

Angles in radians, translation in mm (docs/INTERFACES.md §1); N frames at ``FACE_RATE``.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter1d

from avflow_cli.constants import CAPTURE_SAMPLE_RATE, FACE_RATE
from avflow_cli.data.demo_face import _bumps, _events

FRAME_SAMPLES = int(CAPTURE_SAMPLE_RATE / FACE_RATE)  # 1600 audio samples per video frame


def speech_energy(track: np.ndarray, n_frames: int) -> np.ndarray:
    """Per-frame loudness in [0, 1] of a 48 kHz speaker track: (S,) -> (n_frames,)."""
    frames = track[: n_frames * FRAME_SAMPLES].reshape(n_frames, FRAME_SAMPLES)
    db = 20 * np.log10(np.sqrt((frames**2).mean(axis=1)) + 1e-5)
    return np.clip((db + 50.0) / 40.0, 0.0, 1.0)  # -50 dB -> 0, -10 dB -> 1


def head_motion(
    rng: np.random.Generator,
    energy: np.ndarray,
    listening: np.ndarray,
    emphasis_s: np.ndarray,
    fps: float = FACE_RATE,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Head pose of one speaker: Euler angles (pitch, yaw, roll) in radians (n, 3), rotations (n, 3, 3)
    and translation in mm (n, 3).

    Slow drift everywhere; while speaking the head follows loudness (a lift on loud stretches,
    dips on emphasised syllables, livelier turns); while listening it nods now and then.
    """
    from avflow_cli.render.demo_avatar import DEFAULT_DISTANCE_MM, euler_to_quat, quat_to_rotmat

    n = len(energy)
    t = np.arange(n) / fps
    drift = gaussian_filter1d(rng.normal(size=(n, 6)), sigma=1.2 * fps, axis=0, mode="nearest")
    drift = np.clip(drift / np.maximum(drift.std(axis=0), 1e-6), -2.5, 2.5)  # (n, 6) unit spread, no extremes
    e_fast = gaussian_filter1d(energy, sigma=0.08 * fps, mode="nearest")
    e_slow = gaussian_filter1d(energy, sigma=0.8 * fps, mode="nearest")
    wobble = gaussian_filter1d(rng.normal(size=n), sigma=0.15 * fps, mode="nearest")
    wobble /= max(wobble.std(), 1e-6)

    deg = np.pi / 180
    pitch = 2.5 * deg * drift[:, 0] - 4.0 * deg * (e_fast - e_slow) + 1.5 * deg * e_slow
    pitch += _bumps(emphasis_s, np.full(len(emphasis_s), 2.0 * deg), 0.35, n, fps)
    yaw = 4.0 * deg * drift[:, 1] + 3.0 * deg * e_slow * wobble
    roll = 2.0 * deg * drift[:, 2]

    # Nods while listening: damped 2-2.5 Hz oscillations of the pitch, about one per 3 s.
    for start in _events(rng, n / fps, mean_gap=3.0, min_gap=1.0):
        k = min(int(start * fps), n - 1)
        if not listening[k]:
            continue
        x = t - start
        freq, amp = float(rng.uniform(2.0, 2.5)), float(rng.uniform(4.0, 7.0)) * deg
        nod = amp * np.sin(2 * np.pi * freq * x) * np.exp(-x * 1.5)  # (n,)
        pitch += np.where((x >= 0) & (x < 2.0 / freq), nod, 0.0)

    euler = np.stack([pitch, yaw, roll], axis=1)  # (n, 3)
    rot = quat_to_rotmat(euler_to_quat(pitch, yaw, roll))  # (n, 3, 3)
    tx = 8.0 * drift[:, 3]
    ty = 6.0 * drift[:, 4] + 4.0 * e_slow
    tz = DEFAULT_DISTANCE_MM + 15.0 * drift[:, 5] - 12.0 * e_slow  # leans in while talking
    trans = np.stack([tx, ty, tz], axis=1)  # (n, 3) mm
    return euler, rot, trans
