"""`avflow prep`: sessions (docs/INTERFACES.md §1) → per-session features → HDF5 shards.

Stages write into a work folder ``OUT/sessions/NAME/`` and skip files that already exist:
``vad`` (actor.wav, participant.wav, vad.json), ``mel`` (mel.npy), ``tokens`` (tokens.npy,
p_tokens.npy, tokens.json), ``headpose`` (head_pose.npy, head_tracked.npy). ``shards``
resamples every stream to FPS by timestamps, cuts sessions into clips, and writes shard i
(and its partial manifest) for the sessions assigned to it; ``index.merge_parts`` then writes
``index.json``. Everything a stage reads is validated first, so bad input stops the stage
before it writes anything.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from avflow_cli import constants as K
from avflow_cli.audio.vad import MIN_INPUT_RATE, VadConfig
from avflow_cli.data.arrays import load_array
from avflow_cli.data.index import PartManifest, RunningStats, merge_parts
from avflow_cli.data.schema import ClipRecord, ShardIndex, shard_name
from avflow_cli.errors import AvflowError, InputFileError, MissingCheckpointError
from avflow_cli.fsutil import atomic_path
from avflow_cli.jsonfile import read_json

SESSION_FILE = "session.json"
WORK_SESSIONS = "sessions"
SHARDS_DIR = "shards"
SPEAKERS = ("actor", "participant")
TOKEN_SOURCES = ("auto", "wav2vec2", "alignment")
MEL_SOURCES = ("vad", "raw")  # the actor audio a mel is computed from (--mel-from)
MEL_EXTRACTOR = "log-mel BigVGAN 22k/80 (avflow_cli.audio.mel)"
HEADPOSE_EXTRACTOR = "rotation matrix → hemisphere-continuous quaternion + translation"
PROGRESS = Callable[[str], None]


# --- sessions --------------------------------------------------------------------------------
@dataclass
class Session:
    """One recording folder of the session layout."""

    name: str  # unique within the tree: relative path with "/" → "__"
    path: Path
    meta: dict[str, Any]

    @property
    def audio_path(self) -> Path:
        return self.path / "audio.wav"

    @property
    def face_fps(self) -> float:
        return float(self.meta.get("face_fps", K.FACE_RATE))

    @property
    def channels(self) -> dict[str, int]:
        return {k: int(v) for k, v in self.meta.get("channels", {"actor": K.ACTOR_CHANNEL, "participant": K.PARTICIPANT_CHANNEL}).items()}

    def speakers(self) -> tuple[str, ...]:
        """actor alone for mono sources that declare no participant channel, else both."""
        return ("actor", "participant") if "participant" in self.channels else ("actor",)


def load_session(path: str | Path, name: str | None = None) -> Session:
    """Read and check ``session.json`` of one session folder."""
    path = Path(path)
    meta_path = path / SESSION_FILE
    if not meta_path.is_file():
        raise InputFileError(meta_path, "file not found (not a session folder)")
    meta = read_json(meta_path)
    if not isinstance(meta, dict):
        raise InputFileError(meta_path, "expected a JSON object")
    fps = meta.get("face_fps", K.FACE_RATE)
    if not isinstance(fps, (int, float)) or not 1 <= fps <= 1000:
        raise InputFileError(meta_path, f"face_fps must be a number of frames per second, got {fps!r}")
    return Session(name=name or str(meta.get("name") or path.name), path=path, meta=meta)


def find_sessions(src: str | Path) -> list[Session]:
    """Every folder under ``src`` (``src`` included) holding session.json, sorted by name."""
    src = Path(src)
    if not src.exists():
        raise InputFileError(src, "not found")
    if (src / SESSION_FILE).is_file():
        return [load_session(src, src.resolve().name)]
    found = sorted(p.parent for p in src.rglob(SESSION_FILE))
    if not found:
        raise InputFileError(src, f"no sessions here (no folder holds {SESSION_FILE})")
    return [load_session(p, "__".join(p.relative_to(src).parts)) for p in found]


def work_dir(out: str | Path, session: Session) -> Path:
    return Path(out) / WORK_SESSIONS / session.name


def check_writable(path: str | Path) -> None:
    """Fail early (creating nothing) when ``path`` cannot be created or written."""
    p = Path(path).absolute()
    while not p.exists():
        p = p.parent
    if not p.is_dir():
        raise AvflowError(f"{path}: cannot create output directory ({p} is a file)")
    if not os.access(p, os.W_OK | os.X_OK):
        raise AvflowError(f"{path}: output directory is not writable")


def read_session_audio(session: Session) -> tuple[np.ndarray, int]:
    """audio.wav as (C, N), checked against session.json (channels, sample rate)."""
    from avflow_cli.audio.io import read_audio

    want = 2 if "participant" in session.channels else None
    audio, sr = read_audio(session.audio_path, channels=want, min_seconds=0.1)
    declared = session.meta.get("sample_rate")
    if declared is not None and int(declared) != sr:
        raise InputFileError(session.audio_path, f"sample rate {sr} Hz differs from {declared} Hz in {SESSION_FILE}")
    if sr < MIN_INPUT_RATE:
        raise InputFileError(session.audio_path, f"sample rate {sr} Hz is too low (need at least {MIN_INPUT_RATE} Hz)")
    for speaker, ch in session.channels.items():
        if not 0 <= ch < audio.shape[0]:
            raise InputFileError(session.audio_path, f"{speaker} channel {ch} does not exist ({audio.shape[0]} channels)")
    return audio, sr


def read_transcript(session: Session) -> dict[str, Any] | None:
    path = session.path / "transcript.json"
    if not path.is_file():
        return None
    obj = read_json(path)
    if not isinstance(obj, dict) or not isinstance(obj.get("turns", []), list):
        raise InputFileError(path, "expected {\"turns\": [...]}")
    return obj


def _save_npy(path: Path, arr: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        np.save(tmp, arr)


def _save_json(path: Path, obj: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=1))


def check_session(session: Session, out: str | Path, *, length_tolerance_s: float = 1.0) -> None:
    """Validate every input of a session before any stage writes: shapes, finiteness, rates, lengths.

    Running this first is what makes a bad session leave no partial output behind.
    """
    from avflow_cli.data.resample import common_length
    from avflow_cli.vision.headpose import orthonormalize, split_rt

    audio, sr = read_session_audio(session)
    fps = session.face_fps
    face = load_array(session.path / "face_codes.npy", ndim=2, allow_nan=True)
    rot_path = session.path / "head_rot.npy"
    rot = load_array(rot_path, ndim=3, allow_nan=True)
    trans = load_array(session.path / "head_trans.npy", ndim=2, dim=3, allow_nan=True) if rot.shape[1:] == (3, 3) else None
    rot, trans = split_rt(rot, trans, source=rot_path)
    orthonormalize(rot, source=rot_path)
    if len(rot) != len(face) or len(trans) != len(face):
        raise InputFileError(rot_path, f"{len(rot)} rotations / {len(trans)} translations but face_codes.npy has {len(face)} frames")
    lengths = {"audio.wav": (audio.shape[1], float(sr)), "face_codes.npy": (len(face), fps)}
    if (session.path / "face_valid.npy").is_file():
        valid = load_array(session.path / "face_valid.npy", ndim=1)
        if len(valid) != len(face):
            raise InputFileError(session.path / "face_valid.npy", f"{len(valid)} frames but face_codes.npy has {len(face)}")
    smirk = p_smirk_path(session, out)
    if smirk is not None and "participant" in session.channels:
        lengths[smirk.name] = (len(load_array(smirk, ndim=2)), fps)
    for speaker in session.speakers():
        tok = _precomputed_tokens(session, speaker)
        if tok is not None:
            lengths[tok.name] = (len(load_array(tok, ndim=2, dim=K.TOKEN_DIM)), K.TOKEN_RATE)
    common_length(lengths, tolerance_s=length_tolerance_s, source=session.path)
    read_transcript(session)


# --- stages ------------------------------------------------------------------------------------
def stage_vad(
    session: Session, out: str | Path, cfg: VadConfig | None = None, *, evaluate: bool = True, force: bool = False
) -> Path:
    """actor.wav / participant.wav (speech kept, the rest attenuated) + vad.json.

    With ``evaluate`` and a transcript.json holding turn times, vad.json also gets frame-level
    precision, recall and F1 of each speaker's segments against them ("scores").
    """
    from avflow_cli.audio.io import write_audio
    from avflow_cli.audio.vad import evaluate as score_segments, separate

    work = work_dir(out, session)
    done = work / "vad.json"
    if done.is_file() and not force:
        return done
    cfg = cfg or VadConfig()
    audio, sr = read_session_audio(session)
    speakers = session.speakers()
    channels = np.stack([audio[session.channels[s]] for s in speakers])  # (C, N)
    try:
        result = separate(channels, sr, cfg, speakers)
    except AvflowError as err:
        raise InputFileError(session.audio_path, str(err)) from err
    summary = result.to_json(cfg)
    transcript = read_transcript(session) if evaluate else None
    if transcript and transcript.get("turns"):
        summary["scores"] = score_segments(result.segments, transcript, audio.shape[1] / sr)
    for s in speakers:
        write_audio(work / f"{s}.wav", result.audio[s], sr)
    _save_json(done, summary)  # written last: marks the stage finished
    return done


def _channel_audio(session: Session, out: str | Path, speaker: str, use_vad: bool) -> tuple[np.ndarray, int]:
    """Mono audio of ``speaker``: the VAD-cleaned channel, or the raw one."""
    from avflow_cli.audio.io import read_audio

    if use_vad:
        stage_vad(session, out)
        audio, sr = read_audio(work_dir(out, session) / f"{speaker}.wav", channels=1)
        return audio[0], sr
    audio, sr = read_session_audio(session)
    return audio[session.channels[speaker]], sr


def log_mel_long(wav: np.ndarray, chunk_frames: int = 4096) -> np.ndarray:
    """``log_mel`` of arbitrarily long 22 050 Hz audio in chunks, identical to one call. (N,) → (N // 256, 80)

    Each chunk carries two hops of real audio on both sides, so only the signal's own ends see
    the reflect padding, as in the one-shot computation.
    """
    from avflow_cli.audio.mel import log_mel

    hop, margin = K.HOP_LENGTH, 2 * K.HOP_LENGTH
    total = len(wav) // hop
    out = []
    for j0 in range(0, total, chunk_frames):
        j1 = min(total, j0 + chunk_frames)
        a, b = max(0, j0 * hop - margin), min(len(wav), j1 * hop + margin)
        mel = log_mel(wav[a:b]).numpy()  # (frames, 80)
        off = (j0 * hop - a) // hop
        out.append(mel[off : off + j1 - j0])
    return np.concatenate(out).astype(np.float32)  # (T, 80)


def stage_mel(session: Session, out: str | Path, *, mel_from: str = "vad", force: bool = False) -> Path:
    """mel.npy (T, 80) of the actor's channel, resampled to 22 050 Hz first.

    ``mel_from``: "vad" (the VAD-cleaned actor.wav, running the VAD if needed) or "raw" (the
    actor's channel of audio.wav), as ``ShardOptions.mel_from`` and ``--mel-from``.
    """
    if mel_from not in MEL_SOURCES:
        raise AvflowError(f"--mel-from must be one of {', '.join(MEL_SOURCES)}, got {mel_from!r}")
    from avflow_cli.audio.io import resample

    done = work_dir(out, session) / "mel.npy"
    if done.is_file() and not force:
        return done
    wav, sr = _channel_audio(session, out, "actor", use_vad=mel_from == "vad")
    wav22 = resample(wav, sr, K.SAMPLE_RATE).numpy()  # (N22,)
    if len(wav22) < K.HOP_LENGTH:
        raise InputFileError(session.audio_path, "audio too short for one mel frame")
    _save_npy(done, log_mel_long(wav22))
    return done


def _precomputed_tokens(session: Session, speaker: str) -> Path | None:
    path = session.path / f"tokens_{speaker}.npy"
    return path if path.is_file() else None


@lru_cache(maxsize=2)
def _wav2vec2(cls: Any, checkpoint: str | None, device: str) -> Any:
    """One loaded extractor per (checkpoint, device) for the whole run, not one per session."""
    return cls(checkpoint=checkpoint, device=device)


def choose_token_source(session: Session, source: str, checkpoint: str | Path | None, device: str) -> tuple[str, Any]:
    """Resolve ``auto``: precomputed > wav2vec2 (weights found) > alignment (phone timing)."""
    from avflow_cli.audio.alignment_tokens import has_timing

    if source not in TOKEN_SOURCES:
        raise AvflowError(f"unknown token source {source!r} (choose from {', '.join(TOKEN_SOURCES)})")
    if source == "auto" and _precomputed_tokens(session, "actor"):
        return "precomputed", None
    if source in ("auto", "wav2vec2"):
        from avflow_cli.audio.asr_tokens import Wav2Vec2Tokens

        try:
            return "wav2vec2", _wav2vec2(Wav2Vec2Tokens, str(checkpoint) if checkpoint else None, device)
        except MissingCheckpointError as err:
            missing = err
        if source == "wav2vec2":
            raise missing
        transcript = read_transcript(session)
        if transcript is not None and has_timing(transcript, "actor"):
            return "alignment", None
        raise AvflowError(
            f"{session.path}: no token source: no tokens_actor.npy, no phone timing in transcript.json, and {missing}"
        )
    transcript = read_transcript(session)
    if transcript is None or not has_timing(transcript):
        raise InputFileError(session.path / "transcript.json", "--source alignment needs a transcript with phone timings")
    return "alignment", None


def stage_tokens(
    session: Session,
    out: str | Path,
    *,
    source: str = "auto",
    checkpoint: str | Path | None = None,
    device: str = "cpu",
    extractor: Any = None,
    force: bool = False,
) -> Path:
    """tokens.npy (+ p_tokens.npy) at 50 Hz and tokens.json naming the source used."""
    from avflow_cli.audio.alignment_tokens import ALIGNMENT_EXTRACTOR, tokens_from_transcript

    work = work_dir(out, session)
    done = work / "tokens.json"
    if done.is_file() and not force:
        return done
    if extractor is not None:
        used = "wav2vec2"
    else:
        used, extractor = choose_token_source(session, source, checkpoint, device)
    results: dict[str, np.ndarray] = {}
    for speaker in session.speakers():
        if used == "precomputed":
            path = _precomputed_tokens(session, speaker)
            if path is None:
                raise InputFileError(session.path / f"tokens_{speaker}.npy", "file not found (tokens_actor.npy exists)")
            results[speaker] = load_array(path, ndim=2, dim=K.TOKEN_DIM).astype(np.float32)
        elif used == "wav2vec2":
            wav, sr = _channel_audio(session, out, speaker, use_vad=True)
            results[speaker] = np.asarray(extractor.logits(wav, sr), dtype=np.float32)  # (N_tok, 29)
        else:
            import soundfile as sf

            read_session_audio(session)  # validates the recording the timing refers to
            duration = sf.info(str(session.audio_path)).duration
            results[speaker] = tokens_from_transcript(read_transcript(session)["turns"], duration, speaker)
    for speaker, arr in results.items():
        _save_npy(work / ("tokens.npy" if speaker == "actor" else "p_tokens.npy"), arr)
    name = ALIGNMENT_EXTRACTOR if used == "alignment" else getattr(extractor, "name", None) or used
    _save_json(done, {"source": used, "extractor": str(name), "rate": K.TOKEN_RATE})
    return done


def stage_headpose(session: Session, out: str | Path, *, force: bool = False) -> Path:
    """head_pose.npy (N, 7) at face_fps + head_tracked.npy (N,) from head_rot/head_trans."""
    from avflow_cli.vision.headpose import headpose_and_tracked, split_rt

    work = work_dir(out, session)
    done = work / "head_pose.npy"
    if done.is_file() and not force:
        return done
    rot_path = session.path / "head_rot.npy"
    rot = load_array(rot_path, ndim=3, allow_nan=True)
    trans = None
    if rot.shape[1:] == (3, 3):
        trans = load_array(session.path / "head_trans.npy", ndim=2, dim=3, allow_nan=True)
    rot, trans = split_rt(rot, trans, source=rot_path)
    pose, tracked = headpose_and_tracked(rot, trans, source=rot_path)  # (N, 7), (N,)
    _save_npy(work / "head_tracked.npy", tracked)
    _save_npy(done, pose)
    return done


# --- streams at FPS ----------------------------------------------------------------------------
def p_smirk_path(session: Session, out: str | Path) -> Path | None:
    """Participant features: `prep smirk` output in the work folder, else the session's file."""
    for path in (work_dir(out, session) / "p_smirk.npy", session.path / "participant_smirk.npy"):
        if path.is_file():
            return path
    return None


def session_streams(
    session: Session, out: str | Path, *, participant: bool, length_tolerance_s: float = 1.0
) -> dict[str, np.ndarray]:
    """Every stream of a session at FPS, trimmed to the shortest: {mel, tokens, face, head_pose, valid, p_*}."""
    from avflow_cli.data.resample import common_length, fill_nearest, resample_headpose, resample_mask, resample_to_fps

    work = work_dir(out, session)
    fps = session.face_fps
    mel = load_array(work / "mel.npy", ndim=2, dim=K.N_MELS)
    tokens = load_array(work / "tokens.npy", ndim=2, dim=K.TOKEN_DIM)
    face_path = session.path / "face_codes.npy"
    face = load_array(face_path, ndim=2, allow_nan=True).astype(np.float32)
    pose = load_array(work / "head_pose.npy", ndim=2, dim=K.HEAD_POSE_DIM)
    tracked = load_array(work / "head_tracked.npy", ndim=1).astype(bool)
    face_ok = np.isfinite(face).all(axis=1)  # (N,) NaN rows: the tracker lost the face
    if not face_ok.any():
        raise InputFileError(face_path, "no frame has finite face codes")
    valid_path = session.path / "face_valid.npy"
    if valid_path.is_file():
        face_valid = load_array(valid_path, ndim=1).astype(bool)
        if len(face_valid) != len(face):
            raise InputFileError(valid_path, f"{len(face_valid)} frames but face_codes.npy has {len(face)}")
        face_ok &= face_valid
    if len(pose) != len(face):
        raise InputFileError(session.path / "head_rot.npy", f"{len(pose)} frames but face_codes.npy has {len(face)}")
    lengths = {
        "mel.npy": (len(mel), K.FPS),
        "tokens.npy": (len(tokens), K.TOKEN_RATE),
        "face_codes.npy": (len(face), fps),
        "head_rot.npy": (len(pose), fps),
    }
    extra: dict[str, tuple[np.ndarray, float]] = {}
    if participant:
        extra["p_tokens"] = (load_array(work / "p_tokens.npy", ndim=2, dim=K.TOKEN_DIM), K.TOKEN_RATE)
        smirk_path = p_smirk_path(session, out)
        if smirk_path is None:
            raise InputFileError(session.path / "participant_smirk.npy", "file not found (needed for participant streams)")
        smirk = load_array(smirk_path, ndim=2)
        if smirk.shape[1] not in (K.SMIRK_DIM, K.RELEASE_SMIRK_DIM):
            raise InputFileError(smirk_path, f"expected {K.SMIRK_DIM} or {K.RELEASE_SMIRK_DIM} features per frame, got {smirk.shape[1]}")
        extra["p_smirk"] = (smirk, fps)
        lengths["p_tokens.npy"] = (len(extra["p_tokens"][0]), K.TOKEN_RATE)
        lengths[smirk_path.name] = (len(smirk), fps)
    n = common_length(lengths, tolerance_s=length_tolerance_s, source=session.path)
    if n < 1:
        raise InputFileError(session.path, "shorter than one frame at FPS")
    face = fill_nearest(face, face_ok)  # lost rows: nearest good row (interpolation only)
    streams = {
        "mel": mel[:n].astype(np.float32),
        "tokens": resample_to_fps(tokens.astype(np.float32), K.TOKEN_RATE, n),
        "face": resample_to_fps(face, fps, n),
        "head_pose": resample_headpose(pose, fps, n),
        "valid": resample_mask(face_ok & tracked, fps, n),
    }
    for name, (arr, rate) in extra.items():
        streams[name] = resample_to_fps(arr.astype(np.float32), rate, n)
    return streams


# --- clips, splits and shard assignment -----------------------------------------------------------
def clip_bounds(frames: int, max_frames: int, min_frames: int = 1) -> list[tuple[int, int]]:
    """Cut ``frames`` into the fewest near-equal clips of at most ``max_frames`` (none if too short)."""
    if frames < min_frames:
        return []
    n = max(1, math.ceil(frames / max_frames))
    edges = np.linspace(0, frames, n + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:])]


def assign_splits(names: list[str], val_fraction: float, test_fraction: float, seed: int = 0) -> dict[str, str]:
    """Deterministic session-level split; ≥ 3 sessions always give val and test at least one."""
    if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
        raise AvflowError(f"split fractions must be in [0, 1) and sum below 1, got val={val_fraction} test={test_fraction}")
    order = sorted(names, key=lambda s: hashlib.sha256(f"{seed}:{s}".encode()).hexdigest())
    n = len(order)
    n_val = round(n * val_fraction)
    n_test = round(n * test_fraction)
    if n >= 3:
        n_val, n_test = max(1, n_val) if val_fraction > 0 else 0, max(1, n_test) if test_fraction > 0 else 0
    n_val, n_test = min(n_val, max(0, n - 1)), min(n_test, max(0, n - 1 - n_val))
    splits = {s: "val" for s in order[:n_val]}
    splits |= {s: "test" for s in order[n_val : n_val + n_test]}
    return {s: splits.get(s, "train") for s in names}


MAX_CLIP_SECONDS = 3600.0  # one clip is read whole by prep: an hour is already far beyond the 20 s windows


def check_num_shards(num_shards: int | None, num_sessions: int) -> int:
    """The shard count: the default (one per 8 sessions) for None, else 1 … one per session."""
    if num_shards is None:
        return default_num_shards(num_sessions)
    if not 1 <= num_shards <= max(1, num_sessions):
        raise AvflowError(f"--num-shards must be between 1 and the number of sessions ({num_sessions}), got {num_shards}")
    return num_shards


def default_num_shards(num_sessions: int, sessions_per_shard: int = 8) -> int:
    return max(1, math.ceil(num_sessions / sessions_per_shard))


# --- the shard stage ---------------------------------------------------------------------------
@dataclass
class ShardOptions:
    """Settings that every shard of one run must share (saved into index.json's config)."""

    max_clip_seconds: float = 60.0
    min_clip_seconds: float = 1.0
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    seed: int = 0
    participant: str = "auto"  # auto | yes | no
    length_tolerance_s: float = 1.0
    tokens_source: str = "auto"
    mel_from: str = "vad"  # vad | raw
    vad: dict[str, Any] = field(default_factory=lambda: asdict(VadConfig()))

    def validate(self) -> None:
        if not (math.isfinite(self.max_clip_seconds) and 0 < self.max_clip_seconds <= MAX_CLIP_SECONDS):
            raise AvflowError(f"--max-clip-seconds must be above 0 and at most {MAX_CLIP_SECONDS:g}, got {self.max_clip_seconds}")
        if not (math.isfinite(self.min_clip_seconds) and self.min_clip_seconds >= 0):
            raise AvflowError(f"--min-clip-seconds must be a finite number of seconds >= 0, got {self.min_clip_seconds}")
        if not (0 <= self.val_fraction < 1 and 0 <= self.test_fraction < 1 and self.val_fraction + self.test_fraction < 1):
            raise AvflowError(f"--val-fraction and --test-fraction must be in [0, 1) and sum below 1, "
                              f"got {self.val_fraction} and {self.test_fraction}")
        if not (math.isfinite(self.length_tolerance_s) and self.length_tolerance_s >= 0):
            raise AvflowError(f"--length-tolerance-s must be a finite number of seconds >= 0, got {self.length_tolerance_s}")
        if self.participant not in ("auto", "yes", "no"):
            raise AvflowError(f"--participant must be auto, yes or no, got {self.participant!r}")
        if self.mel_from not in MEL_SOURCES:
            raise AvflowError(f"--mel-from must be vad or raw, got {self.mel_from!r}")


def session_has_participant(session: Session, out: str | Path) -> bool:
    return "participant" in session.channels and p_smirk_path(session, out) is not None


def use_participant(sessions: list[Session], out: str | Path, mode: str) -> bool:
    """Participant streams go in only when every session has them (one schema per shard set)."""
    if mode == "no":
        return False
    have = [session_has_participant(s, out) for s in sessions]
    if mode == "yes" and not all(have):
        lacking = [s.name for s, h in zip(sessions, have) if not h][:3]
        raise AvflowError(f"--participant yes, but sessions {lacking} have no participant channel or SMIRK features")
    return all(have)


def prepare_session(
    session: Session,
    out: str | Path,
    opts: ShardOptions,
    *,
    checkpoint: str | Path | None = None,
    device: str = "cpu",
    on_stage: PROGRESS | None = None,
    force: bool = False,
) -> None:
    """Run every missing per-session stage (each skips finished work unless ``force``)."""
    cfg = VadConfig(**opts.vad)
    steps: list[tuple[str, Callable[[], Path]]] = [
        ("vad", lambda: stage_vad(session, out, cfg, force=force)),
        ("mel", lambda: stage_mel(session, out, mel_from=opts.mel_from, force=force)),
        ("tokens", lambda: stage_tokens(session, out, source=opts.tokens_source, checkpoint=checkpoint, device=device, force=force)),
        ("headpose", lambda: stage_headpose(session, out, force=force)),
    ]
    for name, run in steps:
        if on_stage:
            on_stage(f"{name} {session.name}")
        run()


def _extractors(session: Session, out: str | Path, participant: bool, smirk: Path | None) -> dict[str, str]:
    tokens_meta = json.loads((work_dir(out, session) / "tokens.json").read_text())
    ex = {
        "mel": MEL_EXTRACTOR,
        "tokens": f"{tokens_meta['source']} ({tokens_meta['extractor']})",
        "face": "session face_codes.npy",
        "head_pose": HEADPOSE_EXTRACTOR,
        "vad": "webrtcvad",
    }
    if participant:
        ex["p_tokens"] = ex["tokens"]
        ex["p_smirk"] = ("prep smirk" if smirk and smirk.parent != session.path
                         else K.DEMO_FACE_SOURCE if session.meta.get("source") == "demo" else "session participant_smirk.npy")
    return ex


def write_shard_part(
    src: str | Path,
    out: str | Path,
    shard_index: int,
    num_shards: int,
    opts: ShardOptions,
    *,
    shard_dir: str | Path | None = None,
    checkpoint: str | Path | None = None,
    device: str = "cpu",
    on_stage: PROGRESS | None = None,
    sessions: list[Session] | None = None,
    check: bool = True,
    force: bool = False,
) -> PartManifest:
    """Write shard ``shard_index`` of ``num_shards`` (its sessions: every num_shards-th) + its part."""
    from avflow_cli.data.shards import write_shard

    opts.validate()
    sessions = sessions if sessions is not None else find_sessions(src)
    if not 0 <= shard_index < num_shards:
        raise AvflowError(f"--shard-index must be in [0, {num_shards}), got {shard_index}")
    shard_dir = Path(shard_dir) if shard_dir else Path(out) / SHARDS_DIR
    config = asdict(opts)
    part_path = shard_dir / "parts" / f"part-{shard_index:05d}.json"
    if part_path.is_file() and not force:
        part = PartManifest.load(part_path)
        shards_ok = all((shard_dir / c.shard).is_file() for c in part.clips)
        if part.num_shards == num_shards and part.config == config and shards_ok:
            return part  # finished earlier
    check_writable(shard_dir)
    splits = assign_splits([s.name for s in sessions], opts.val_fraction, opts.test_fraction, opts.seed)
    participant = use_participant(sessions, out, opts.participant)
    mine = [s for k, s in enumerate(sessions) if k % num_shards == shard_index]
    max_frames = max(1, int(opts.max_clip_seconds * K.FPS))
    min_frames = max(1, int(opts.min_clip_seconds * K.FPS))
    clips: dict[str, dict[str, np.ndarray]] = {}
    records: list[ClipRecord] = []
    stats: dict[str, RunningStats] = {}
    dims: dict[str, int] = {}
    extractors: dict[str, str] = {}
    name = shard_name(shard_index)
    for session in mine if check else ():  # inputs first: a bad session stops the run before any write
        check_session(session, out, length_tolerance_s=opts.length_tolerance_s)
    for session in mine:
        prepare_session(session, out, opts, checkpoint=checkpoint, device=device, on_stage=on_stage, force=force)
        if on_stage:
            on_stage(f"shard {session.name}")
        streams = session_streams(session, out, participant=participant, length_tolerance_s=opts.length_tolerance_s)
        for k, v in _extractors(session, out, participant, p_smirk_path(session, out)).items():
            if v not in extractors.get(k, ""):
                extractors[k] = f"{extractors[k]} + {v}" if k in extractors else v
        for j, (a, b) in enumerate(clip_bounds(len(streams["valid"]), max_frames, min_frames)):
            clip_id = f"{session.name}--{j:04d}"
            clip = {k: v[a:b] for k, v in streams.items()}
            clips[clip_id] = clip
            records.append(ClipRecord(id=clip_id, shard=name, frames=b - a, split=splits[session.name],
                                      session=session.name, start_frame=a, source=str(session.path)))
            for k, v in clip.items():
                if v.dtype == bool:
                    continue
                if dims.setdefault(k, v.shape[1]) != v.shape[1]:
                    raise InputFileError(session.path, f"stream {k} has {v.shape[1]} dims, other sessions {dims[k]}")
                if splits[session.name] == "train":
                    rows = v[clip["valid"]] if k in ("face", "head_pose") else v
                    stats.setdefault(k, RunningStats()).add(rows)
    if clips:
        dims["valid"] = 1
        write_shard(shard_dir / name, clips, attrs={"source": str(src), "extractors": json.dumps(extractors)})
    part = PartManifest(shard_index, num_shards, records, dims, stats, extractors, config)
    part.save(shard_dir)
    from avflow_cli.render.avatar import carry_face_decoders

    carry_face_decoders(src, shard_dir)  # metrics and previews read the decoders from the shard directory
    return part


def build_shards(
    src: str | Path,
    out: str | Path,
    opts: ShardOptions,
    *,
    num_shards: int | None = None,
    shard_index: int | None = None,
    shard_dir: str | Path | None = None,
    checkpoint: str | Path | None = None,
    device: str = "cpu",
    on_stage: PROGRESS | None = None,
    force: bool = False,
) -> ShardIndex | PartManifest:
    """All shards + index.json, or (``shard_index`` given) one shard and its partial manifest.

    ``force`` recomputes every stage and shard instead of skipping finished work.
    """
    sessions = find_sessions(src)
    shard_dir = Path(shard_dir) if shard_dir else Path(out) / SHARDS_DIR
    n = check_num_shards(num_shards, len(sessions))
    check_writable(shard_dir)
    kw = dict(shard_dir=shard_dir, checkpoint=checkpoint, device=device, on_stage=on_stage, sessions=sessions, force=force)
    if shard_index is not None:
        return write_shard_part(src, out, shard_index, n, opts, **kw)
    for session in sessions:
        check_session(session, out, length_tolerance_s=opts.length_tolerance_s)
    remove_stale_parts(shard_dir, n)
    for i in range(n):
        write_shard_part(src, out, i, n, opts, check=False, **kw)
    return merge_parts(shard_dir)


def remove_stale_parts(shard_dir: Path, num_shards: int) -> None:
    """Drop shards and parts a previous run with more shards left behind (indices ≥ num_shards)."""
    for pattern in ("parts/part-*.json", "shard-*.h5"):
        for path in shard_dir.glob(pattern):
            digits = path.stem.split("-")[-1]
            if digits.isdigit() and int(digits) >= num_shards:
                path.unlink()
