"""The demo avatar's face from phone timing: visemes, coarticulation, blinks, smiles, brows.

Lips close on p/b/m, the jaw opens on vowels, lips round on rounded vowels and w, brows rise on
stressed syllables, blinks come every few seconds and smiles are returned ~0.5-1 s after the
other speaker's. The phone timing is flite's (demo corpus) or a forced alignment of real speech
(``avflow demo corpus --actor-speech``); phone names are lower-case ARPAbet either way. Also the
participant's SMIRK-layout features, a fixed map of their face parameters. Letters: N frames.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from scipy.ndimage import gaussian_filter1d, maximum_filter1d

from avflow_cli.constants import FACE_RATE, SMIRK_DIM, SMIRK_EXPRESSION_DIM

if TYPE_CHECKING:
    from avflow_cli.data.demo_conversation import Placed

OVERSAMPLE = 8  # articulation is computed at 8 x 30 fps so short phones are not missed
SMIRK_SEED = 56  # fixed map from participant parameters to SMIRK-like expression coefficients
JAW_MAX_RAD = 0.35  # SMIRK jaw-pose pitch at jaw_open = 1

VOWEL_JAW = {
    "aa": 0.9, "ae": 0.8, "ah": 0.65, "ao": 0.75, "aw": 0.8, "ay": 0.8, "eh": 0.6, "ey": 0.5,
    "er": 0.4, "axr": 0.4, "ih": 0.38, "ix": 0.3, "iy": 0.3, "ow": 0.55, "oy": 0.6, "uh": 0.4,
    "uw": 0.32, "ux": 0.32, "ax": 0.4,
}
REDUCED_VOWELS = frozenset({"ax", "ix", "axr"})  # never carry lexical stress
BILABIALS = frozenset({"p", "b", "m", "em"})
LABIODENTALS = frozenset({"f", "v"})
ROUNDING = {
    "uw": 0.9, "ux": 0.8, "w": 0.95, "ow": 0.75, "oy": 0.6, "uh": 0.6, "ao": 0.5, "aw": 0.45,
    "r": 0.35, "er": 0.35, "sh": 0.5, "zh": 0.5, "ch": 0.45, "jh": 0.4,
}
CONSONANT_JAW = 0.18
BILABIAL_JAW = 0.1
REST_JAW = 0.02


def _phone_targets(phone: str) -> tuple[float, float, float]:
    """(jaw_open, lip_closure, lip_round) articulation target of one phone."""
    if phone in VOWEL_JAW:
        jaw = VOWEL_JAW[phone]
    elif phone in BILABIALS:
        jaw = BILABIAL_JAW
    elif phone == "pau":
        jaw = REST_JAW
    else:
        jaw = CONSONANT_JAW
    closure = 1.0 if phone in BILABIALS else (0.5 if phone in LABIODENTALS else 0.0)
    return jaw, closure, ROUNDING.get(phone, 0.0)



def articulation(phones: list[tuple[str, float, float]], n_frames: int, fps: float = FACE_RATE) -> np.ndarray:
    """Jaw, lip-closure and rounding tracks from phone timing: (n_frames, 3).

    Targets are set per phone on an 8x oversampled grid and smoothed (coarticulation); lips are
    then forced shut on every frame whose ±half-frame window touches a bilabial, so each p/b/m
    closes the lips on at least one frame, as real bilabial stops do.
    """
    rate = fps * OVERSAMPLE
    n_fine = n_frames * OVERSAMPLE
    t = np.arange(n_fine) / rate  # (K,)
    targets = np.tile(np.array(_phone_targets("pau")), (n_fine, 1))  # (K, 3)
    bilabial = np.zeros(n_fine, dtype=bool)
    if phones:
        starts = np.array([s for _, s, _ in phones])
        ends = np.array([e for _, _, e in phones])
        table = np.array([_phone_targets(p) for p, _, _ in phones])  # (n_phones, 3)
        is_bil = np.array([p in BILABIALS for p, _, _ in phones])
        idx = np.searchsorted(starts, t, side="right") - 1  # (K,)
        inside = (idx >= 0) & (t < ends[np.clip(idx, 0, None)])
        targets[inside] = table[idx[inside]]
        bilabial[inside] = is_bil[idx[inside]]
    jaw = gaussian_filter1d(targets[:, 0], sigma=0.022 * rate, mode="nearest")
    closure = gaussian_filter1d(targets[:, 1], sigma=0.015 * rate, mode="nearest")
    rnd = gaussian_filter1d(targets[:, 2], sigma=0.03 * rate, mode="nearest")
    shut = maximum_filter1d(bilabial.astype(np.float64), size=OVERSAMPLE + 1, mode="nearest")
    closure = np.maximum(closure, shut)
    return np.stack([jaw, closure, rnd], axis=1)[::OVERSAMPLE].astype(np.float32)  # (N, 3)


def _bumps(times: np.ndarray, amps: np.ndarray, width_s: float, n_frames: int, fps: float) -> np.ndarray:
    """Sum of raised-cosine bumps of ``width_s`` centred on ``times``: (n_frames,)."""
    out = np.zeros(n_frames)
    t = np.arange(n_frames) / fps
    for centre, amp in zip(times, amps):
        x = (t - centre) / (width_s / 2)
        out += amp * np.where(np.abs(x) < 1, 0.5 * (1 + np.cos(np.pi * x)), 0.0)
    return out


def stressed_vowels(phones: list[tuple[str, float, float]]) -> list[tuple[float, float]]:
    """(start, end) of likely stressed vowels of one utterance.

    flite does not print lexical stress, but its duration model lengthens stressed vowels, so a
    full (non-reduced) vowel at least 10 % longer than the utterance's median vowel counts.
    """
    vowels = [(p, s, e) for p, s, e in phones if p in VOWEL_JAW]
    if not vowels:
        return []
    median = float(np.median([e - s for _, s, e in vowels]))
    return [(s, e) for p, s, e in vowels if p not in REDUCED_VOWELS and (e - s) >= 1.1 * median]


def _events(rng: np.random.Generator, duration: float, mean_gap: float, min_gap: float) -> np.ndarray:
    """Event times of a Poisson-like process with a refractory gap, in [0, duration)."""
    times, t = [], float(rng.exponential(mean_gap))
    while t < duration:
        times.append(t)
        t += min_gap + float(rng.exponential(mean_gap - min_gap))
    return np.array(times)


def blink_track(rng: np.random.Generator, n_frames: int, fps: float) -> np.ndarray:
    """Blinks every ~3.5 s (fast close, slower open; ~1 in 10 one-sided): (n_frames, 2) left, right."""
    out = np.zeros((n_frames, 2))
    t = np.arange(n_frames) / fps
    for start in _events(rng, n_frames / fps, mean_gap=3.5, min_gap=1.2):
        close, reopen = float(rng.uniform(0.06, 0.1)), float(rng.uniform(0.12, 0.2))
        x = t - start
        shape = np.where(x < close, x / close, 1.0 - (x - close) / reopen)
        shape = np.clip(np.where(x < 0, 0.0, shape), 0.0, 1.0)
        side = np.array([1.0, 1.0]) if rng.random() > 0.1 else rng.permutation([1.0, 0.6])
        out = np.maximum(out, shape[:, None] * side)
    return out


def smile_events(
    rng: np.random.Generator, duration: float, mean_gap: float
) -> list[tuple[float, float, float]]:
    """(start, length, amplitude) of smiles, about one per ``mean_gap`` seconds."""
    return [
        (float(s), float(rng.uniform(1.5, 3.5)), float(rng.uniform(0.6, 1.0)))
        for s in _events(rng, duration, mean_gap=mean_gap, min_gap=3.0)
    ]


def smile_track(events: list[tuple[float, float, float]], n_frames: int, fps: float) -> np.ndarray:
    """Smooth-stepped smiles (0.3 s ramps): (n_frames,)."""
    t = np.arange(n_frames) / fps
    out = np.zeros(n_frames)
    for start, length, amp in events:
        up = np.clip((t - start) / 0.3, 0, 1)
        down = np.clip((start + length - t) / 0.3, 0, 1)
        ramp = np.minimum(up, down)
        out = np.maximum(out, amp * ramp * ramp * (3 - 2 * ramp))
    return out


def returned_smiles(
    rng: np.random.Generator, participant_events: list[tuple[float, float, float]], duration: float
) -> list[tuple[float, float, float]]:
    """The actor smiles back 0.5-1 s after most participant smiles, plus rare smiles of its own."""
    out = []
    for start, length, _ in participant_events:
        if rng.random() < 0.85:
            delay, stretch, amp = rng.uniform(0.5, 1.0), rng.uniform(0.8, 1.2), rng.uniform(0.5, 0.9)
            out.append((start + float(delay), length * float(stretch), float(amp)))
    out += smile_events(rng, duration, mean_gap=40.0)
    return sorted(e for e in out if e[0] < duration)


def face_parameters(
    rng: np.random.Generator,
    placed: list[Placed],
    speaker: str,
    smiles: list[tuple[float, float, float]],
    n_frames: int,
    fps: float = FACE_RATE,
) -> tuple[np.ndarray, np.ndarray]:
    """One speaker's face parameters (n_frames, P) and the times of their stressed syllables."""
    from avflow_cli.render.demo_avatar import NUM_PARAMS, PARAM_INDEX, clip_params

    own = [p for p in placed if p.speaker == speaker]
    phones = [ph for p in own for ph in p.abs_phones()]
    params = np.zeros((n_frames, NUM_PARAMS))
    params[:, [PARAM_INDEX["jaw_open"], PARAM_INDEX["lip_closure"], PARAM_INDEX["lip_round"]]] = articulation(
        phones, n_frames, fps
    )
    params[:, PARAM_INDEX["smile"]] = smile_track(smiles, n_frames, fps)
    stress = np.array([(s + e) / 2 for p in own for s, e in stressed_vowels(p.abs_phones())])
    chosen = stress[rng.random(len(stress)) < 0.5] if len(stress) else stress
    listening_raises = _events(rng, n_frames / fps, mean_gap=12.0, min_gap=4.0)
    brow_t = np.concatenate([chosen, listening_raises])
    brow_a = rng.uniform(0.3, 0.7, size=len(brow_t))
    params[:, PARAM_INDEX["brow_raise"]] = _bumps(brow_t, brow_a, 0.4, n_frames, fps)
    params[:, [PARAM_INDEX["blink_l"], PARAM_INDEX["blink_r"]]] = blink_track(rng, n_frames, fps)
    gaze = gaussian_filter1d(rng.normal(size=(n_frames, 2)), sigma=0.8 * fps, axis=0, mode="nearest")
    params[:, [PARAM_INDEX["gaze_x"], PARAM_INDEX["gaze_y"]]] = 0.35 * gaze / max(gaze.std(), 1e-6)
    return clip_params(params), chosen


def _rotvec(rot: np.ndarray) -> np.ndarray:
    """Axis-angle vectors of rotation matrices: (n, 3, 3) -> (n, 3)."""
    from scipy.spatial.transform import Rotation

    return Rotation.from_matrix(rot).as_rotvec()


def participant_smirk(params: np.ndarray, rot: np.ndarray) -> np.ndarray:
    """SMIRK-layout features of the participant (n, 56): expression 50 | jaw pose 3 | head rotation 3.

    Expression coefficients are a fixed seeded linear map of the participant's face parameters
    (like FLAME's expression space); the jaw pose opens about x with jaw_open; the head rotation
    is the axis-angle of the participant's head pose.
    """
    from avflow_cli.render.demo_avatar import NEUTRAL_PARAMS, NUM_PARAMS, PARAM_INDEX

    basis = np.random.default_rng(SMIRK_SEED).normal(0.0, 0.5, size=(SMIRK_EXPRESSION_DIM, NUM_PARAMS))
    expression = (params - NEUTRAL_PARAMS) @ basis.T  # (n, 50)
    jaw = np.zeros((len(params), 3))
    jaw[:, 0] = JAW_MAX_RAD * params[:, PARAM_INDEX["jaw_open"]]
    out = np.concatenate([expression, jaw, _rotvec(rot)], axis=1).astype(np.float32)
    assert out.shape[1] == SMIRK_DIM
    return out
