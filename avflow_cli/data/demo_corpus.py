"""The built-in demo corpus: a small dyadic "capture" made from real speech synthesis (docs/ARCHITECTURE.md §5).

Real talking-head data cannot be downloaded here, so avflow generates its own: two speakers
(flite voices ``slt`` for the actor, ``rms``/``awb`` for the participant) alternate turns with
pauses and back-channels; flite prints every phone with its end time (``-psdur``), so the phone
timing is exact. From that timing the demo avatar's face parameters are driven by visemes (lips
close on p/b/m, jaw opens on vowels, lips round on rounded vowels and w, brows rise on stressed
syllables, random blinks, smiles returned ~0.5-1 s after the participant smiles), the head moves
with speech energy and nods while listening, and everything is written in the session layout of
docs/INTERFACES.md §1 so ``avflow prep`` treats it as real data. The actor's sentences are also
exported in LJSpeech layout (``OUT/ljspeech``) for text-to-tokens training.

Everything is deterministic for a seed. Letters: N frames at 30 fps, P face parameters,
F face-code dim, S audio samples.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter1d, maximum_filter1d

from avflow_cli.constants import (
    CAPTURE_SAMPLE_RATE,
    FACE_RATE,
    SAMPLE_RATE,
    SMIRK_DIM,
    SMIRK_EXPRESSION_DIM,
)
from avflow_cli.errors import AvflowError
from avflow_cli.vision.demo_avatar import FACE_DECODER_FILE

GENERATOR = "avflow demo corpus"
GENERATOR_VERSION = 2  # bump when the output for a given seed changes
ACTOR_VOICE = "slt"
PARTICIPANT_VOICES = ("rms", "awb")
DEFAULT_SESSION_SECONDS = 60.0
MIN_SESSION_SECONDS = 8.0  # shorter tails are folded into the previous session
MAX_MINUTES = 600.0
TRACK_RATE = 16000  # flite's native rate: speaker tracks are assembled here, then resampled once
FRAME_SAMPLES = int(CAPTURE_SAMPLE_RATE / FACE_RATE)  # 1600 audio samples per video frame
OVERSAMPLE = 8  # articulation is computed at 8 x 30 fps so short phones are not missed
SMIRK_SEED = 56  # fixed map from participant parameters to SMIRK-like expression coefficients
JAW_MAX_RAD = 0.35  # SMIRK jaw-pose pitch at jaw_open = 1

INSTALL_HINT = "run `make install` or `sudo apt-get install flite`"

# ---------------------------------------------------------------------------------------------
# Visemes: articulation targets per flite (ARPAbet) phone
# ---------------------------------------------------------------------------------------------
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


# ---------------------------------------------------------------------------------------------
# Text resources
# ---------------------------------------------------------------------------------------------
def _resource_lines(name: str) -> list[str]:
    text = resources.files("avflow_cli.resources").joinpath(name).read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def load_sentences() -> list[str]:
    """The shipped public-domain sentences (the Harvard sentences, IEEE 1969)."""
    return _resource_lines("harvard_sentences.txt")


def load_backchannels() -> list[tuple[str, str | None]]:
    """Shipped back-channels as (text, flite phones or None when flite reads the text itself)."""
    out = []
    for line in _resource_lines("backchannels.txt"):
        text, _, phones = line.partition("|")
        out.append((text.strip(), phones.strip() or None))
    return out


# ---------------------------------------------------------------------------------------------
# flite
# ---------------------------------------------------------------------------------------------
@dataclass
class Utterance:
    """One synthesised sentence, trimmed to its speech with a short margin."""

    text: str
    voice: str
    audio: np.ndarray  # (S,) float32 at TRACK_RATE
    phones: list[tuple[str, float, float]]  # (phone, start_s, end_s) from the trimmed start, no "pau"

    @property
    def duration(self) -> float:
        return len(self.audio) / TRACK_RATE


def parse_psdur(text: str) -> list[tuple[str, float, float]]:
    """Parse flite's ``-psdur`` output ``pau:0.184 dh:0.228 ...`` (phone:end time) into spans."""
    spans, start = [], 0.0
    for item in text.split():
        phone, sep, end = item.rpartition(":")
        if not sep:
            continue
        try:
            end_s = float(end)
        except ValueError:
            continue
        spans.append((phone, start, end_s))
        start = end_s
    return spans


def find_flite() -> str:
    """Path of the flite executable, or a one-line error telling how to install it."""
    exe = shutil.which("flite")
    if exe is None:
        raise AvflowError(f"flite (speech synthesiser) not found: {INSTALL_HINT}")
    return exe


class Flite:
    """Runs flite per sentence and caches results (back-channels repeat)."""

    TRIM_MARGIN_S = 0.05

    def __init__(self, exe: str | None = None) -> None:
        self.exe = exe or find_flite()
        self._cache: dict[tuple[str, str, str | None], Utterance] = {}
        self._tmp = tempfile.TemporaryDirectory(prefix="avflow-flite-")

    def version(self) -> str:
        out = subprocess.run([self.exe, "--version"], capture_output=True, text=True, check=False)
        lines = [ln.strip() for ln in (out.stdout + out.stderr).splitlines() if "version" in ln]
        return lines[0] if lines else "flite (unknown version)"

    def close(self) -> None:
        self._tmp.cleanup()

    def synth(self, text: str, voice: str, phones: str | None = None) -> Utterance:
        """Speak ``text`` (or the flite ``phones`` string, labelled ``text``) with ``voice``."""
        from avflow_cli.audio.io import read_audio, resample

        key = (text, voice, phones)
        if key in self._cache:
            return self._cache[key]
        wav = Path(self._tmp.name) / "utt.wav"
        source = ["-p", f"pau {phones} pau"] if phones else ["-t", text]
        proc = subprocess.run(
            [self.exe, "-voice", voice, *source, "-o", str(wav), "-psdur"],
            capture_output=True, text=True, check=False,
        )
        spans = parse_psdur(proc.stdout)
        if proc.returncode != 0 or not wav.is_file() or not spans:
            why = proc.stderr.strip() or "no output"
            raise AvflowError(f"flite failed on voice {voice!r} for {text!r}: {why}")
        audio, sr = read_audio(wav)
        mono = audio[0]  # (S,)
        if sr != TRACK_RATE:
            mono = resample(mono, sr, TRACK_RATE).numpy()
        speech = [s for s in spans if s[0] != "pau"]
        if not speech:
            raise AvflowError(f"flite produced no phones for {text!r}")
        t0 = max(0.0, speech[0][1] - self.TRIM_MARGIN_S)
        t1 = min(len(mono) / TRACK_RATE, speech[-1][2] + self.TRIM_MARGIN_S)
        clip = mono[int(round(t0 * TRACK_RATE)) : int(round(t1 * TRACK_RATE))]
        clip = (0.5 / max(float(np.abs(clip).max()), 1e-4)) * clip  # peak-normalise to -6 dBFS
        utt = Utterance(
            text=text,
            voice=voice,
            audio=clip.astype(np.float32),
            phones=[(p, round(s - t0, 4), round(e - t0, 4)) for p, s, e in speech],
        )
        self._cache[key] = utt
        return utt


# ---------------------------------------------------------------------------------------------
# Conversation planning
# ---------------------------------------------------------------------------------------------
@dataclass
class Placed:
    """An utterance placed in a session: start on the TRACK_RATE sample grid."""

    speaker: str  # "actor" | "participant"
    utt: Utterance
    start_sample: int
    backchannel: bool = False

    @property
    def start(self) -> float:
        return self.start_sample / TRACK_RATE

    @property
    def end(self) -> float:
        return self.start + self.utt.duration

    def abs_phones(self) -> list[tuple[str, float, float]]:
        return [(p, self.start + s, self.start + e) for p, s, e in self.utt.phones]


def _cycle(items: list[str], rng: np.random.Generator) -> Iterator[str]:
    """Endless reshuffled passes over ``items``."""
    while True:
        for i in rng.permutation(len(items)):
            yield items[i]


def plan_session(
    rng: np.random.Generator,
    flite: Flite,
    duration: float,
    actor_text: Iterator[str],
    participant_text: Iterator[str],
    participant_voice: str,
    backchannels: list[tuple[str, str | None]],
) -> list[Placed]:
    """Alternating turns (actor 1-3 sentences, participant 1-2) with pauses and back-channels.

    The participant sometimes back-channels while the actor is speaking (overlap) or in the
    pause after an actor turn; turns never run past ``duration``.
    """
    placed: list[Placed] = []
    end_limit = duration - 0.25
    p_busy = 0.0  # the participant's channel is busy until then

    def put(speaker: str, utt: Utterance, at: float, bc: bool = False) -> Placed | None:
        item = Placed(speaker, utt, int(round(at * TRACK_RATE)), bc)
        if item.end > end_limit:
            return None
        placed.append(item)
        return item

    def backchannel(at: float) -> None:
        nonlocal p_busy
        if at < p_busy + 0.2:
            return
        text, phones = backchannels[int(rng.integers(len(backchannels)))]
        item = put("participant", flite.synth(text, participant_voice, phones), at, True)
        if item is not None:
            p_busy = item.end

    t = float(rng.uniform(0.3, 0.8))
    speaker = "actor" if rng.random() < 0.7 else "participant"
    while t < end_limit:
        n_sent = int(rng.integers(1, 4)) if speaker == "actor" else int(rng.integers(1, 3))
        for _ in range(n_sent):
            if speaker == "actor":
                item = put("actor", flite.synth(next(actor_text), ACTOR_VOICE), t)
            else:
                item = put("participant", flite.synth(next(participant_text), participant_voice), t)
            if item is None:
                return sorted(placed, key=lambda p: p.start_sample)
            if speaker == "participant":
                p_busy = item.end
            elif rng.random() < 0.45:  # overlapping back-channel late in the actor's sentence
                backchannel(item.start + item.utt.duration * float(rng.uniform(0.45, 0.85)))
            t = item.end + float(rng.uniform(0.15, 0.45))
        if speaker == "actor" and rng.random() < 0.3:  # acknowledgement, then the actor goes on
            backchannel(t + float(rng.uniform(0.0, 0.2)))
            t = max(t, p_busy) + float(rng.uniform(0.25, 0.6))
            continue
        t = max(t, p_busy) + float(rng.uniform(0.25, 0.9))
        speaker = "participant" if speaker == "actor" else "actor"
    return sorted(placed, key=lambda p: p.start_sample)


# ---------------------------------------------------------------------------------------------
# Face parameters
# ---------------------------------------------------------------------------------------------
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
    from avflow_cli.vision.demo_avatar import NUM_PARAMS, PARAM_INDEX, clip_params

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


# ---------------------------------------------------------------------------------------------
# Head motion
# ---------------------------------------------------------------------------------------------
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
    from avflow_cli.vision.demo_avatar import DEFAULT_DISTANCE_MM, euler_to_quat, quat_to_rotmat

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
    from avflow_cli.vision.demo_avatar import NEUTRAL_PARAMS, NUM_PARAMS, PARAM_INDEX

    basis = np.random.default_rng(SMIRK_SEED).normal(0.0, 0.5, size=(SMIRK_EXPRESSION_DIM, NUM_PARAMS))
    expression = (params - NEUTRAL_PARAMS) @ basis.T  # (n, 50)
    jaw = np.zeros((len(params), 3))
    jaw[:, 0] = JAW_MAX_RAD * params[:, PARAM_INDEX["jaw_open"]]
    out = np.concatenate([expression, jaw, _rotvec(rot)], axis=1).astype(np.float32)
    assert out.shape[1] == SMIRK_DIM
    return out


# ---------------------------------------------------------------------------------------------
# Audio
# ---------------------------------------------------------------------------------------------
def speaker_track(placed: list[Placed], speaker: str, n_samples: int) -> np.ndarray:
    """Clean 48 kHz track of one speaker (S,): utterances summed at TRACK_RATE, resampled once."""
    from avflow_cli.audio.io import resample

    n16 = int(math.ceil(n_samples * TRACK_RATE / CAPTURE_SAMPLE_RATE))
    track = np.zeros(n16, dtype=np.float32)
    for p in placed:
        if p.speaker == speaker:
            seg = p.utt.audio[: max(0, n16 - p.start_sample)]
            track[p.start_sample : p.start_sample + len(seg)] += seg
    up = resample(track, TRACK_RATE, CAPTURE_SAMPLE_RATE).numpy()  # (S',)
    return np.pad(up, (0, max(0, n_samples - len(up))))[:n_samples]


def _delay(x: np.ndarray, samples: int) -> np.ndarray:
    return np.concatenate([np.zeros(samples, dtype=x.dtype), x[: len(x) - samples]])


def mix_dyadic(
    rng: np.random.Generator, actor: np.ndarray, participant: np.ndarray
) -> tuple[np.ndarray, dict[str, float]]:
    """Two-microphone recording (2, S): each channel hears its speaker, an attenuated, delayed
    copy of the other (cross-talk bleed) and its own low-passed background noise."""
    bleed_db = float(rng.uniform(-22.0, -16.0))
    delay_ms = float(rng.uniform(1.5, 4.0))
    noise_db = float(rng.uniform(-56.0, -48.0))
    gain, lag = 10 ** (bleed_db / 20), int(round(delay_ms * CAPTURE_SAMPLE_RATE / 1000))
    noise = rng.normal(size=(2, len(actor)))
    noise = gaussian_filter1d(noise, sigma=1.5, axis=1)  # soften white noise towards room tone
    noise *= 10 ** (noise_db / 20) / max(float(noise.std()), 1e-9)
    mix = np.stack([actor + gain * _delay(participant, lag), participant + gain * _delay(actor, lag)]) + noise
    meta = {"bleed_db": round(bleed_db, 2), "bleed_delay_ms": round(delay_ms, 3),
            "noise_dbfs": round(noise_db, 2)}
    return np.clip(mix, -1.0, 1.0).astype(np.float32), meta


# ---------------------------------------------------------------------------------------------
# Sessions and the corpus
# ---------------------------------------------------------------------------------------------
@dataclass
class _Shared:
    """State shared by the sessions of one corpus."""

    flite: Flite
    decoder: object
    actor_text: Iterator[str]
    participant_text: Iterator[str]
    backchannels: list[tuple[str, str | None]]
    lj_rows: list[tuple[str, str]] = field(default_factory=list)


def session_durations(total_s: float, session_s: float) -> list[float]:
    """Split ``total_s`` into sessions of ``session_s``; a tail under MIN_SESSION_SECONDS joins the last.

    Durations are rounded to whole video frames.
    """
    if total_s <= session_s:
        out = [total_s]
    else:
        n = int(total_s // session_s)
        out, rest = [session_s] * n, total_s - n * session_s
        if rest >= MIN_SESSION_SECONDS:
            out.append(rest)
        else:
            out[-1] += rest
    return [round(d * FACE_RATE) / FACE_RATE for d in out]


def _transcript(placed: list[Placed]) -> dict:
    return {
        "turns": [
            {
                "speaker": p.speaker,
                "start": round(p.start, 4),
                "end": round(p.end, 4),
                "text": p.utt.text,
                "backchannel": p.backchannel,
                "phones": [[ph, round(s, 4), round(e, 4)] for ph, s, e in p.abs_phones()],
            }
            for p in placed
        ]
    }


def _write_json(path: Path, obj: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=1) + "\n", encoding="utf-8")


def _export_ljspeech(placed: list[Placed], session: str, lj_dir: Path, shared: _Shared) -> None:
    """Actor sentences as LJSpeech items: wavs/ID.wav (22 050 Hz mono), alignments/ID.json."""
    from avflow_cli.audio.io import resample, write_audio

    items = [p for p in placed if p.speaker == "actor" and not p.backchannel]
    if not items:
        return
    # One batched resampling call (zero-padded to the longest) instead of one kernel per sentence.
    longest = max(len(p.utt.audio) for p in items)
    batch = np.stack([np.pad(p.utt.audio, (0, longest - len(p.utt.audio))) for p in items])  # (B, S16)
    wavs = resample(batch, TRACK_RATE, SAMPLE_RATE).numpy()  # (B, S22)
    for k, (p, wav) in enumerate(zip(items, wavs)):
        item = f"{session}_{k:03d}"
        wav = wav[: int(math.ceil(len(p.utt.audio) * SAMPLE_RATE / TRACK_RATE))]
        write_audio(lj_dir / "wavs" / f"{item}.wav", wav, SAMPLE_RATE)
        _write_json(
            lj_dir / "alignments" / f"{item}.json",
            {
                "text": p.utt.text,
                "sample_rate": SAMPLE_RATE,
                "duration": round(len(wav) / SAMPLE_RATE, 4),
                "voice": f"flite:{p.utt.voice}",
                "phones": [[ph, s, e] for ph, s, e in p.utt.phones],
            },
        )
        shared.lj_rows.append((item, p.utt.text))


def generate_session(
    out: Path,
    name: str,
    duration: float,
    rng: np.random.Generator,
    shared: _Shared,
    participant_voice: str,
    *,
    size: int,
    step: Callable[[str], None] = lambda _s: None,
) -> dict:
    """Write one session folder (INTERFACES.md §1) and its LJSpeech items; returns its summary."""
    from avflow_cli.audio.io import write_audio
    from avflow_cli.vision.demo_avatar import FACE_PARAM_NAMES, euler_to_quat, render_video

    n_frames = int(round(duration * FACE_RATE))
    n_samples = n_frames * FRAME_SAMPLES
    sdir = out / name
    sdir.mkdir(parents=True)

    step("speech")
    placed = plan_session(
        rng, shared.flite, duration, shared.actor_text, shared.participant_text, participant_voice,
        shared.backchannels,
    )
    actor = speaker_track(placed, "actor", n_samples)  # (S,)
    participant = speaker_track(placed, "participant", n_samples)  # (S,)
    audio, mix_meta = mix_dyadic(rng, actor, participant)  # (2, S)
    write_audio(sdir / "audio.wav", audio, CAPTURE_SAMPLE_RATE)

    step("face")
    p_smiles = smile_events(rng, duration, mean_gap=12.0)
    a_smiles = returned_smiles(rng, p_smiles, duration)
    a_params, a_emph = face_parameters(rng, placed, "actor", a_smiles, n_frames)  # (N, P)
    p_params, p_emph = face_parameters(rng, placed, "participant", p_smiles, n_frames)  # (N, P)
    a_energy, p_energy = speech_energy(actor, n_frames), speech_energy(participant, n_frames)
    a_listen = (p_energy > 0.3) & (a_energy < 0.1)
    p_listen = (a_energy > 0.3) & (p_energy < 0.1)
    _, a_rot, a_trans = head_motion(rng, a_energy, a_listen, a_emph)
    p_euler, p_rot, p_trans = head_motion(rng, p_energy, p_listen, p_emph)
    codes = shared.decoder.encode(a_params, rng)  # (N, F)
    np.save(sdir / "face_codes.npy", codes)
    np.save(sdir / "face_params.npy", a_params.astype(np.float32))
    np.save(sdir / "head_rot.npy", a_rot.astype(np.float32))
    np.save(sdir / "head_trans.npy", a_trans.astype(np.float32))
    np.save(sdir / "participant_smirk.npy", participant_smirk(p_params, p_rot))
    np.save(sdir / "participant_params.npy", p_params.astype(np.float32))
    _write_json(sdir / "transcript.json", _transcript(placed))

    step("video")
    p_pose = np.concatenate([euler_to_quat(*p_euler.T), p_trans], axis=1)  # (N, 7)
    render_video(sdir / "participant.mp4", p_params, p_pose, FACE_RATE, size=size, palette="participant")

    step("ljspeech")
    _export_ljspeech(placed, name, out / "ljspeech", shared)

    n_actor = sum(p.speaker == "actor" for p in placed)
    n_bc = sum(p.backchannel for p in placed)
    info = {
        "name": name,
        "sample_rate": CAPTURE_SAMPLE_RATE,
        "channels": {"actor": 0, "participant": 1},
        "face_fps": FACE_RATE,
        "face_dim": int(codes.shape[1]),
        "source": "demo",
        "translation_units": "mm",
        "duration_s": round(n_frames / FACE_RATE, 4),
        "num_frames": n_frames,
        "voices": {"actor": f"flite:{ACTOR_VOICE}", "participant": f"flite:{participant_voice}"},
        "face_param_names": list(FACE_PARAM_NAMES),
        "utterances": {"actor": n_actor, "participant": len(placed) - n_actor - n_bc, "backchannels": n_bc},
        "smiles": {
            "participant": [[round(s, 3), round(d, 3), round(a, 3)] for s, d, a in p_smiles],
            "actor": [[round(s, 3), round(d, 3), round(a, 3)] for s, d, a in a_smiles],
        },
        "recording": mix_meta,
        "extra_files": {"face_params.npy": "actor avatar parameters (N, P)",
                        "participant_params.npy": "participant avatar parameters (N, P)"},
    }
    _write_json(sdir / "session.json", info)
    return info


def _share_permissions(root: Path) -> None:
    """Give the finished tree the usual umask permissions (temporary files and folders are private)."""
    import os

    mask = os.umask(0)
    os.umask(mask)
    for path in [root, *root.rglob("*")]:
        path.chmod((0o777 if path.is_dir() else 0o666) & ~mask)


def _corpus_request(minutes: float, seed: int, session_seconds: float, size: int) -> dict:
    return {"minutes": minutes, "seed": seed, "session_seconds": session_seconds, "size": size,
            "version": GENERATOR_VERSION}


def _existing(out: Path, request: dict) -> dict | None:
    """The summary of a finished corpus at ``out`` made with the same request, else None."""
    meta = out / "corpus.json"
    if not meta.is_file():
        return None
    try:
        corpus = json.loads(meta.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return corpus if corpus.get("request") == request else None


def generate_corpus(
    out_dir: str | Path,
    minutes: float = 1.0,
    seed: int = 0,
    *,
    session_seconds: float = DEFAULT_SESSION_SECONDS,
    size: int = 192,
    force: bool = False,
    show_progress: bool = True,
) -> dict:
    """Generate the demo corpus into ``out_dir`` (atomically) and return its summary.

    ``minutes`` of sessions of ``session_seconds`` each (a short tail joins the last one),
    participant video at ``size`` px. Re-running with the same arguments on a finished corpus
    returns at once (``"skipped": True``); a different corpus already there needs ``force``.
    Summary keys: out_dir, sessions, total_seconds, actor_utterances, ljspeech_items,
    elapsed_s, seconds_per_minute, skipped, plus corpus.json's contents.
    """
    from avflow_cli import __version__
    from avflow_cli.checks import check_seed
    from avflow_cli.console import progress
    from avflow_cli.fsutil import atomic_dir
    from avflow_cli.vision.demo_avatar import FACE_PARAM_NAMES, FaceDecoder

    out = Path(out_dir)
    min_minutes = MIN_SESSION_SECONDS / 60.0
    if not (math.isfinite(minutes) and min_minutes <= minutes <= MAX_MINUTES):
        raise AvflowError(f"--minutes must be between {min_minutes:.2f} and {MAX_MINUTES:g}, got {minutes}")
    if not session_seconds >= MIN_SESSION_SECONDS:
        raise AvflowError(
            f"--session-seconds must be at least {MIN_SESSION_SECONDS:g} (got {session_seconds})"
        )
    if not 32 <= size <= 2048:
        raise AvflowError(f"--size must be between 32 and 2048 pixels, got {size}")
    check_seed(seed)
    if out.exists() and not out.is_dir():
        raise AvflowError(f"{out}: exists and is not a directory")
    request = _corpus_request(float(minutes), int(seed), float(session_seconds), int(size))
    done = _existing(out, request)
    if done is not None and not force:
        return {**done, "out_dir": str(out), "skipped": True}
    if out.is_dir() and any(out.iterdir()) and not force:
        raise AvflowError(f"{out}: exists and holds something else; choose another --out or pass --force")

    import avflow_cli.audio.io  # noqa: F401  (imports torch once, outside the timed generation)

    flite = Flite()
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    sentences = load_sentences()
    order = rng.permutation(len(sentences))
    half = len(order) // 2
    shared = _Shared(
        flite=flite,
        decoder=FaceDecoder.create(),
        actor_text=_cycle([sentences[i] for i in order[:half]], np.random.default_rng([seed, 1])),
        participant_text=_cycle([sentences[i] for i in order[half:]], np.random.default_rng([seed, 2])),
        backchannels=load_backchannels(),
    )
    durations = session_durations(minutes * 60.0, session_seconds)
    names = [f"session_{i:03d}" for i in range(len(durations))]
    sessions = []
    try:
        with atomic_dir(out, kind="demo-corpus", force=True) as tmp, progress(transient=not show_progress) as bar:
            task = bar.add_task("demo corpus", total=sum(durations), status="", visible=show_progress)
            for i, (name, dur) in enumerate(zip(names, durations)):
                pick = np.random.default_rng([seed, 3, i]).integers(len(PARTICIPANT_VOICES))
                voice = PARTICIPANT_VOICES[int(pick)]
                sessions.append(
                    generate_session(
                        tmp, name, dur, np.random.default_rng([seed, 100, i]), shared, voice, size=size,
                        step=lambda s, name=name: bar.update(task, status=f"{name}: {s}"),
                    )
                )
                bar.advance(task, dur)
            (tmp / "ljspeech").mkdir(exist_ok=True)
            (tmp / "ljspeech" / "metadata.csv").write_text(
                "".join(f"{item}|{text}|{text}\n" for item, text in shared.lj_rows), encoding="utf-8"
            )
            shared.decoder.save(tmp / FACE_DECODER_FILE)
            total = sum(s["duration_s"] for s in sessions)
            corpus = {
                "generator": GENERATOR,
                "generator_version": GENERATOR_VERSION,
                "avflow_version": __version__,
                "request": request,
                "seed": int(seed),
                "total_seconds": round(total, 3),
                "speakers": {"actor": f"flite:{ACTOR_VOICE}",
                             "participant": sorted({s["voices"]["participant"] for s in sessions})},
                "flite": flite.version(),
                "sessions": names,
                "face_decoder": FACE_DECODER_FILE,
                "face_param_names": list(FACE_PARAM_NAMES),
                "face_dim": shared.decoder.dim,
                "ljspeech": {"dir": "ljspeech", "items": len(shared.lj_rows), "sample_rate": SAMPLE_RATE},
            }
            _write_json(tmp / "corpus.json", corpus)
            _share_permissions(tmp)
    finally:
        flite.close()
    elapsed = time.perf_counter() - started
    return {
        **corpus,
        "out_dir": str(out),
        "skipped": False,
        "elapsed_s": round(elapsed, 2),
        "seconds_per_minute": round(elapsed / max(total / 60.0, 1e-9), 2),
        "actor_utterances": len(shared.lj_rows),
        "ljspeech_items": len(shared.lj_rows),
    }
