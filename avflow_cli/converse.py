"""``avflow converse``: a whole conversation on one timeline — the avatar speaks its lines and
listens during the user's turns.

Dialogue file (TOML or YAML), turns in order::

    seed = 0                      # optional
    pause = 0.3                   # optional: seconds of silence after every turn (default 0.3)

    [[turns]]
    avatar = "Hi! How was your day?"

    [[turns]]
    user = "day.wav"              # the user's speech (paths relative to the dialogue file)
    video = "day.mp4"             # optional: the user's face (or features = "day.npz")
    channel = 1                   # optional: which channel of a multi-channel wav
    pause = 0.5                   # optional: this turn's pause

YAML: the same keys, ``turns:`` a list of mappings. The timeline is the turns back to back:
during an avatar turn the avatar's tokens are its line's and the user is a silent listener;
during a user turn the avatar's tokens are silence and the user's speech (and face) guide it.
The participant tokens come from one pass of the model's token extractor over the user's whole
track (so the recogniser sees each turn in context), the face features per turn. Everything is
generated through ``Synthesizer.synthesize_tokens`` (docs/ARCHITECTURE.md §6).

Outputs: ``speech.wav`` (the avatar), ``conversation.wav`` (stereo: avatar | user),
``motion.npz`` (the whole timeline, with turn spans), ``meta.json`` and ``preview.mp4`` (the
avatar next to the user's video, or next to the user's waveform where a turn has no video).
"""

from __future__ import annotations

import json
import math
import re
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from avflow_cli import __version__
from avflow_cli import constants as K
from avflow_cli.checks import MAX_PAUSE_SECONDS, MAX_SEED, MAX_STEPS, MAX_TIMELINE_SECONDS, check_text, recording_seconds
from avflow_cli.errors import AvflowError, InputFileError
from avflow_cli.output import CONVERSATION_NAME, META_NAME, MOTION_NAME, PREVIEW_NAME, SPEECH_NAME, OutputFolder

OUTPUT_KIND = "converse"
DEFAULT_PAUSE = 0.3
TURN_KEYS = {"avatar", "user", "video", "features", "channel", "pause"}
TOP_KEYS = {"turns", "seed", "pause", "steps"}


@dataclass
class Turn:
    """One turn of the dialogue, with where it is in the file (for error messages)."""

    index: int  # 1-based
    line: int | None
    avatar: str | None = None
    user: Path | None = None
    video: Path | None = None
    features: Path | None = None
    channel: str | None = None
    pause: float = DEFAULT_PAUSE

    @property
    def speaker(self) -> str:
        return "avatar" if self.avatar is not None else "user"


@dataclass
class Dialogue:
    path: Path
    turns: list[Turn]
    seed: int = 0
    steps: int | None = None

    @property
    def inputs(self) -> list[Path]:
        """Every file the conversation reads: an output may never be (or hold) one of them."""
        files = [self.path]
        for turn in self.turns:
            files += [f for f in (turn.user, turn.video, turn.features) if f is not None]
        return files


# ---------------------------------------------------------------------------------------------
# Parsing (every problem names the file, the line and the field)
# ---------------------------------------------------------------------------------------------
def _toml_turn_lines(text: str) -> list[int]:
    return [i for i, line in enumerate(text.splitlines(), 1) if re.match(r"\s*\[\[\s*turns\s*\]\]", line)]


def _yaml_turn_lines(text: str) -> list[int]:
    import yaml

    try:
        node = yaml.compose(text)
    except yaml.YAMLError:
        return []
    if node is None or not hasattr(node, "value") or not isinstance(node.value, list):
        return []
    for key, value in node.value:
        if getattr(key, "value", None) == "turns" and isinstance(value.value, list):
            return [item.start_mark.line + 1 for item in value.value]
    return []


def _field_line(text: str, start: int | None, key: str) -> int | None:
    """Line of ``key`` inside the turn that starts at ``start`` (TOML ``key =`` / YAML ``key:``)."""
    if start is None:
        return None
    lines = text.splitlines()
    for i in range(start - 1, len(lines)):
        if i > start - 1 and re.match(r"\s*(\[\[|- )", lines[i]):
            break
        if re.match(rf"\s*(- )?{re.escape(key)}\s*[=:]", lines[i]):
            return i + 1
    return start


def _is_pause(value: Any) -> bool:
    """A pause is a finite number of seconds in [0, MAX_PAUSE_SECONDS] (not a bool, NaN or inf)."""
    return (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            and 0 <= value <= MAX_PAUSE_SECONDS)


def load_dialogue(path: str | Path) -> Dialogue:
    """Parse and check a dialogue file; one-line errors name the line and field."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, "dialogue file not found")
    text = path.read_text(encoding="utf-8", errors="replace")
    suffix = path.suffix.lower()
    try:
        if suffix == ".toml":
            data = tomllib.loads(text)
            starts = _toml_turn_lines(text)
        elif suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
            starts = _yaml_turn_lines(text)
        else:
            raise InputFileError(path, "a dialogue file must end in .toml, .yaml or .yml")
    except tomllib.TOMLDecodeError as err:
        raise InputFileError(path, f"not valid TOML ({err})") from err
    except Exception as err:
        if type(err).__module__.startswith("yaml"):
            mark = getattr(err, "problem_mark", None)
            where = f"line {mark.line + 1}: " if mark is not None else ""
            raise InputFileError(path, f"{where}not valid YAML ({getattr(err, 'problem', err)})") from err
        raise
    if not isinstance(data, dict):
        raise InputFileError(path, "top level must be a table/mapping with a 'turns' list")
    unknown = sorted(set(data) - TOP_KEYS)
    if unknown:
        raise InputFileError(path, f"unknown top-level field {unknown[0]!r} (known: {', '.join(sorted(TOP_KEYS))})")
    raw = data.get("turns")
    if not isinstance(raw, list) or not raw:
        raise InputFileError(path, "field 'turns': needs a non-empty list of turns ([[turns]] in TOML)")

    def fail(i: int, key: str | None, problem: str) -> InputFileError:
        start = starts[i - 1] if i - 1 < len(starts) else None
        line = _field_line(text, start, key) if key else start
        where = f"line {line}, " if line else ""
        return InputFileError(path, f"{where}turn {i}{f', field {key!r}' if key else ''}: {problem}")

    default_pause = data.get("pause", DEFAULT_PAUSE)
    if not _is_pause(default_pause):
        raise InputFileError(path, f"field 'pause': must be a number of seconds in [0, {MAX_PAUSE_SECONDS:g}], "
                                   f"got {default_pause!r}")
    seed = data.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed <= MAX_SEED:
        raise InputFileError(path, f"field 'seed': must be an integer in [0, {MAX_SEED}], got {seed!r}")
    steps = data.get("steps")
    if steps is not None and (not isinstance(steps, int) or isinstance(steps, bool) or not 1 <= steps <= MAX_STEPS):
        raise InputFileError(path, f"field 'steps': must be an integer in [1, {MAX_STEPS}], got {steps!r}")
    turns: list[Turn] = []
    for i, item in enumerate(raw, 1):
        if not isinstance(item, dict):
            raise fail(i, None, "must be a table/mapping with 'avatar' or 'user'")
        extra = sorted(set(item) - TURN_KEYS)
        if extra:
            raise fail(i, extra[0], f"unknown field (a turn has: {', '.join(sorted(TURN_KEYS))})")
        if ("avatar" in item) == ("user" in item):
            raise fail(i, None, "needs exactly one of 'avatar' (text the avatar says) or 'user' (a wav of the user)")
        turn = Turn(i, starts[i - 1] if i - 1 < len(starts) else None, pause=float(default_pause))
        if "pause" in item:
            p = item["pause"]
            if not _is_pause(p):
                raise fail(i, "pause", f"must be a number of seconds in [0, {MAX_PAUSE_SECONDS:g}], got {p!r}")
            turn.pause = float(p)
        if "avatar" in item:
            if not isinstance(item["avatar"], str) or not item["avatar"].strip():
                raise fail(i, "avatar", "must be non-empty text")
            try:
                check_text(item["avatar"], "the text")
            except AvflowError as err:
                raise fail(i, "avatar", str(err)) from None
            for key in ("video", "features", "channel"):
                if key in item:
                    raise fail(i, key, "belongs to a user turn, not an avatar turn")
            turn.avatar = item["avatar"].strip()
        else:
            for key in ("user", "video", "features"):
                if key in item:
                    value = item[key]
                    if not isinstance(value, str) or not value:
                        raise fail(i, key, "must be a file path")
                    file = (path.parent / value) if not Path(value).is_absolute() else Path(value)
                    if not file.is_file():
                        raise fail(i, key, f"file not found: {file}")
                    setattr(turn, key, file)
            if turn.video is not None and turn.features is not None:
                raise fail(i, "features", "give 'video' or 'features', not both")
            if "channel" in item:
                turn.channel = str(item["channel"])
        turns.append(turn)
    pauses = sum(turn.pause for turn in turns)
    if pauses > MAX_TIMELINE_SECONDS:
        raise InputFileError(path, f"the pauses add up to {pauses:,.0f} s; a conversation is at most "
                                   f"{MAX_TIMELINE_SECONDS:g} s")
    spoken = pauses
    for turn in turns:  # the user's recordings, from their headers: nothing is read whole before the bound
        spoken += recording_seconds(turn.user) if turn.user is not None else 0.0
        if spoken > MAX_TIMELINE_SECONDS:
            raise fail(turn.index, "user", f"the conversation reaches {spoken:,.1f} s with this recording; "
                                           f"at most {MAX_TIMELINE_SECONDS:g} s")
    return Dialogue(path, turns, seed=seed, steps=steps)


# ---------------------------------------------------------------------------------------------
# The timeline
# ---------------------------------------------------------------------------------------------
@dataclass
class Timeline:
    """Everything on one clock: T frames at FPS, and the user's track at ``sample_rate``."""

    tokens: np.ndarray  # (T, 29) avatar tokens
    user_audio: np.ndarray  # (N,) at sample_rate, silence outside user turns
    sample_rate: int
    spans: list[dict[str, Any]]  # per turn: speaker, start/end frames, text or file
    visual: np.ndarray | None  # (T, D) participant features (the normaliser's mean where unseen)
    visual_seen: np.ndarray  # (T,) bool
    user_frames: list[tuple[int, int, Path]] = field(default_factory=list)  # video turns: (start, end, path)
    notes: dict[str, Any] = field(default_factory=dict)


def build_timeline(synth: Any, dialogue: Dialogue, *, face: str = "auto") -> Timeline:
    """Lay the turns back to back: tokens, the user's audio track and face features (checked input)."""
    from avflow_cli.audio.io import resample
    from avflow_cli.metrics.face_decoder import find_mouth_decoder
    from avflow_cli.participant import choose_face, read_features_file, video_features
    from avflow_cli.participant.audio import read_participant_audio
    from avflow_cli.participant.tokens import silence_tokens

    cfg = synth.model.config
    source = getattr(cfg, "token_source", "")
    sr = K.SAMPLE_RATE
    pieces_tok: list[np.ndarray] = []
    pieces_wav: list[np.ndarray] = []
    spans: list[dict[str, Any]] = []
    vis_parts: list[tuple[int, np.ndarray]] = []
    user_frames: list[tuple[int, int, Path]] = []
    notes: dict[str, Any] = {}
    frame = 0
    for turn in dialogue.turns:
        where = f"{dialogue.path}: turn {turn.index}" + (f" (line {turn.line})" if turn.line else "")
        if turn.avatar is not None:
            try:
                tok = synth.text_to_tokens(turn.avatar, seed=dialogue.seed + turn.index)  # (n, 29)
            except AvflowError as err:
                raise AvflowError(f"{where}, field 'avatar': {err}") from err
            n = len(tok)
            pieces_tok.append(tok)
            pieces_wav.append(np.zeros(n * K.HOP_LENGTH, np.float32))
            spans.append({"speaker": "avatar", "start": frame, "end": frame + n, "text": turn.avatar})
        else:
            try:
                pa = read_participant_audio(turn.user, turn.channel)
            except AvflowError as err:
                raise AvflowError(f"{where}, field 'user': {err}") from err
            wav = resample(pa.wav, pa.sample_rate, sr).numpy()  # (N,) at 22 050 Hz
            n = len(wav) // K.HOP_LENGTH
            wav = wav[: n * K.HOP_LENGTH]
            pieces_tok.append(silence_tokens(n, source))
            pieces_wav.append(wav.astype(np.float32))
            span = {"speaker": "user", "start": frame, "end": frame + n, "audio": str(turn.user),
                    "audio_channels": pa.channel_note}
            if cfg.participant_visual_dim and (turn.video is not None or turn.features is not None):
                try:
                    if turn.features is not None:
                        feats, fps = read_features_file(turn.features, cfg.participant_visual_dim)
                        span["visual"] = f"features file {turn.features}"
                    else:
                        demo = find_mouth_decoder(synth.model_dir) is not None  # draws the demo avatar
                        kind, note = choose_face(face, demo)
                        feats, fps, name = video_features(turn.video, kind, cfg.participant_visual_dim)
                        span["visual"] = f"{name} [{note}]"
                except AvflowError as err:
                    key = "features" if turn.features is not None else "video"
                    raise AvflowError(f"{where}, field {key!r}: {err}") from err
                from avflow_cli.data.resample import resample_to_fps

                vis_parts.append((frame, resample_to_fps(feats, fps, n_out=n)))
            elif turn.video is not None or turn.features is not None:
                span["visual"] = "ignored (model trained without visual guidance)"
            if turn.video is not None:
                user_frames.append((frame, frame + n, turn.video))
            spans.append(span)
        frame += n
        if (frame + turn.pause * K.FPS) / K.FPS > MAX_TIMELINE_SECONDS:
            raise AvflowError(f"{where}: the conversation reaches {frame / K.FPS + turn.pause:,.0f} s here; "
                              f"at most {MAX_TIMELINE_SECONDS:g} s")
        gap = int(round(turn.pause * K.FPS))
        if gap:
            pieces_tok.append(silence_tokens(gap, source))
            pieces_wav.append(np.zeros(gap * K.HOP_LENGTH, np.float32))
            frame += gap
    T = frame
    visual, seen = None, np.zeros(T, bool)
    if cfg.participant_visual_dim:
        mean = synth.model.normalizer.streams["p_smirk"][0]
        visual = np.repeat(mean[None].astype(np.float32), T, axis=0)  # "no guidance" once normalised
        for start, feats in vis_parts:
            visual[start : start + len(feats)] = feats
            seen[start : start + len(feats)] = True
    if not any(s["speaker"] == "user" for s in spans):
        notes["warning"] = "the dialogue has no user turn: the avatar only speaks"
    return Timeline(np.concatenate(pieces_tok).astype(np.float32), np.concatenate(pieces_wav), sr, spans,
                    visual, seen, user_frames, notes)


def timeline_participant(synth: Any, tl: Timeline, token_extractor: str = "auto") -> Any:
    """The Participant of the whole timeline (tokens from one pass over the user's track)."""
    from avflow_cli.participant import Participant
    from avflow_cli.participant.audio import ParticipantAudio
    from avflow_cli.participant.tokens import choose_extractor, extract_tokens
    from avflow_cli.data.resample import resample_to_fps

    cfg = synth.model.config
    T = len(tl.tokens)
    audio = ParticipantAudio(tl.user_audio, tl.sample_rate, "dialogue user turns", "mono")
    part = Participant(None, None, audio)
    if not (cfg.participant_tokens or cfg.participant_visual_dim):
        part.warnings.append("this model was trained without participant guidance: the avatar will not react to the "
                             "user's turns (train with configs/dyadic.toml)")
        part.record = {"guidance": "ignored (model trained without guidance)"}
        return part
    if cfg.participant_tokens:
        extractor, note = choose_extractor(getattr(cfg, "token_source", ""), token_extractor)
        logits, info = extract_tokens(tl.user_audio, tl.sample_rate, extractor)  # (N_tok, 29) at 50 Hz
        part.p_tokens = resample_to_fps(logits, K.TOKEN_RATE, n_out=T).astype(np.float32)
        part.record["tokens"] = {**info, "choice": note}
        if note.startswith("warning"):
            part.warnings.append(note)
    if tl.visual is not None:
        part.p_smirk = tl.visual
        part.record["visual_frames_seen"] = int(tl.visual_seen.sum())
    return part


# ---------------------------------------------------------------------------------------------
# Preview: the avatar next to the user
# ---------------------------------------------------------------------------------------------
def _user_video_frames(tl: Timeline, n_video: int, size: int, fps: float) -> Any:
    """The right panel at ``fps``: the user's video during video turns, else the user's waveform."""
    import cv2

    from avflow_cli.vision.video import iter_frames

    wav = tl.user_audio
    spf = tl.sample_rate / fps  # samples per video frame
    window = int(2.0 * tl.sample_rate)  # 2 s of waveform, the current time in the middle
    video_at: dict[int, tuple[Path, int]] = {}
    for start, end, path in tl.user_frames:
        a, b = int(start / K.FPS * fps), int(end / K.FPS * fps)
        for k in range(a, b):
            video_at[k] = (path, k - a)
    cache: dict[Path, list[np.ndarray]] = {}
    blank = np.full((size, size, 3), 24, np.uint8)
    for k in range(n_video):
        if k in video_at:
            path, j = video_at[k]
            if path not in cache:
                cache.clear()
                cache[path] = [f for batch in iter_frames(path, fps=fps) for f in batch]
            frames = cache[path]
            if frames:
                yield cv2.resize(frames[min(j, len(frames) - 1)], (size, size), interpolation=cv2.INTER_AREA)
                continue
        img = blank.copy()
        centre = int(k * spf)
        seg = wav[max(0, centre - window // 2) : centre + window // 2]
        if len(seg) > 1:
            xs = np.linspace(0, size - 1, len(seg)).astype(np.int32)
            ys = (size / 2 - np.clip(seg, -1, 1) * size * 0.45).astype(np.int32)
            pts = np.stack([xs, ys], axis=1)[:: max(1, len(seg) // (4 * size))]
            cv2.polylines(img, [np.ascontiguousarray(pts, dtype=np.int32).reshape(-1, 1, 2)], False, (90, 200, 255), 1, cv2.LINE_AA)
        cv2.line(img, (size // 2, 0), (size // 2, size - 1), (255, 255, 255), 1)
        cv2.putText(img, "user", (8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (220, 220, 220), 1, cv2.LINE_AA)
        yield img


def write_conversation_preview(path: Path, synth: Any, result: Any, tl: Timeline) -> str:
    """preview.mp4: avatar | user, with the stereo conversation as its sound. Returns what ran."""
    import shutil

    from avflow_cli.render.video import encode_mp4, open_frame_source, to_video_rate

    if shutil.which("ffmpeg") is None:
        return "none (ffmpeg not found)"
    fps = 30.0
    size = 384
    if synth.face_decoder_path is None:
        return "none (the model carries no avatar to draw)"
    source = open_frame_source(synth.face_decoder_path, size=size, device="cpu")
    face, pose = to_video_rate(result.face, result.head_pose, K.FPS, fps)
    n = len(face)
    left = source.frames(face, pose)
    right = _user_video_frames(tl, n, source.size, fps)
    frames = (np.concatenate([a, b], axis=1) for a, b in zip(left, right))
    stereo = conversation_audio(result.wav, tl.user_audio)
    encode_mp4(path, frames, (2 * source.size, source.size), fps, audio=stereo, audio_sr=result.sample_rate)
    return f"{source.name} | " + ("user video / waveform" if tl.user_frames else "user waveform")


def conversation_audio(avatar: np.ndarray, user: np.ndarray) -> np.ndarray:
    """Stereo (2, N): avatar left, user right, same length."""
    n = max(len(avatar), len(user))
    out = np.zeros((2, n), np.float32)
    out[0, : len(avatar)] = avatar
    out[1, : len(user)] = user
    return out


# ---------------------------------------------------------------------------------------------
# The command's work
# ---------------------------------------------------------------------------------------------
def converse(synth: Any, dialogue_path: str | Path, out_dir: str | Path, *, seed: int | None = None,
             steps: int | None = None, token_extractor: str = "auto", face: str = "auto", preview: bool = True,
             force: bool = False) -> tuple[Path, dict[str, Any]]:
    """Generate the whole conversation into ``out_dir`` (atomically); returns it and its meta."""
    dialogue = load_dialogue(dialogue_path)
    out_dir = Path(out_dir)
    # checked before any work; the dialogue and the user's recordings are inputs, never replaced
    writer = OutputFolder(out_dir, kind=OUTPUT_KIND, force=force, protect=[*synth.reads, *dialogue.inputs])
    seed = dialogue.seed if seed is None else seed
    steps = dialogue.steps if steps is None else steps
    timings: dict[str, float] = {}
    start = time.perf_counter()
    tl = build_timeline(synth, dialogue, face=face)
    part = timeline_participant(synth, tl, token_extractor)
    timings["participant"] = time.perf_counter() - start
    result = synth.synthesize_tokens(tl.tokens, participant=part, seed=seed, steps=steps)
    timings.update(result.timings)
    with writer as folder:
        folder.write_audio(SPEECH_NAME, result.wav, result.sample_rate)
        folder.write_audio(CONVERSATION_NAME, conversation_audio(result.wav, tl.user_audio), result.sample_rate)
        motion = result.motion_arrays(
            turn_speaker=np.array([s["speaker"] for s in tl.spans]),
            turn_frames=np.array([[s["start"], s["end"]] for s in tl.spans], dtype=np.int64),
            p_tokens=part.p_tokens, p_smirk=part.p_smirk)
        folder.write_npz(MOTION_NAME, **motion)
        preview_kind = "none"
        if preview:
            t0 = time.perf_counter()
            preview_kind = write_conversation_preview(folder.file(PREVIEW_NAME), synth, result, tl)
            timings["preview"] = time.perf_counter() - t0
        meta = {
            "dialogue": str(Path(dialogue_path).resolve()), "seed": seed, "steps": result.steps, "temperature": synth.temperature, "token_gain": synth.token_gain, "fps": K.FPS,
            "sample_rate": result.sample_rate, "frames": int(len(result.mel)), "seconds": result.seconds,
            "turns": tl.spans, "participant": {**part.record, "warnings": part.warnings, **tl.notes},
            "components": result.components, "preview": preview_kind, "timings_s": timings,
            "avflow_version": __version__,
        }
        folder.write_json(META_NAME, meta)
    return out_dir, meta


# ---------------------------------------------------------------------------------------------
# A dialogue from a recorded session (the demo corpus's test dialogue)
# ---------------------------------------------------------------------------------------------
MAX_PAUSE_S = 1.5


def dialogue_from_session(session_dir: str | Path, out_dir: str | Path, *, max_seconds: float = 20.0) -> Path:
    """Write ``out_dir/dialogue.toml`` (+ the user's turns as wav, and mp4 when the session has a
    participant video) from a session folder (docs/INTERFACES.md §1) with a ``transcript.json``:
    the actor's turns become avatar lines, the participant's turns user turns, in time order, up to
    ``max_seconds``. Turns that overlap an earlier one (back-channels over speech) are left out:
    a dialogue is sequential. Pauses keep the session's gaps (≤ 1.5 s)."""
    import shutil
    import subprocess

    from avflow_cli.audio.io import read_audio, write_audio
    from avflow_cli.media_input import ffmpeg_input_args

    session_dir, out_dir = Path(session_dir), Path(out_dir)
    try:
        meta = json.loads((session_dir / "session.json").read_text())
        turns = json.loads((session_dir / "transcript.json").read_text())["turns"]
    except (OSError, json.JSONDecodeError, KeyError) as err:
        raise InputFileError(session_dir, f"not a session with session.json and transcript.json ({err})") from err
    channel = int(meta.get("channels", {}).get("participant", K.PARTICIPANT_CHANNEL))
    audio, sr = read_audio(session_dir / "audio.wav")
    if audio.shape[0] <= channel:
        raise InputFileError(session_dir / "audio.wav", f"has no participant channel {channel}")
    video = session_dir / "participant.mp4"
    has_video = video.is_file() and shutil.which("ffmpeg") is not None
    chosen: list[dict[str, Any]] = []
    for turn in sorted(turns, key=lambda t: float(t["start"])):
        if float(turn["start"]) >= max_seconds:
            break
        if chosen and float(turn["start"]) < float(chosen[-1]["end"]):
            continue  # overlaps the previous turn
        if str(turn.get("text", "")).strip():
            chosen.append(turn)
    if not any(t["speaker"] == "participant" for t in chosen):
        raise InputFileError(session_dir, f"no participant turn in the first {max_seconds:g} s")
    out_dir.mkdir(parents=True, exist_ok=True)
    lines = [f"# from {session_dir} (first {max_seconds:g} s)", "seed = 0", ""]
    for i, turn in enumerate(chosen):
        start, end = float(turn["start"]), float(turn["end"])
        nxt = float(chosen[i + 1]["start"]) if i + 1 < len(chosen) else end
        pause = min(MAX_PAUSE_S, max(0.0, nxt - end))
        lines.append("[[turns]]")
        if turn["speaker"] == "actor":
            lines.append(f"avatar = {json.dumps(str(turn['text']).strip())}")
        else:
            name = f"user_{i + 1:02d}"
            write_audio(out_dir / f"{name}.wav", audio[channel, int(start * sr) : int(end * sr)], sr)
            lines.append(f'user = "{name}.wav"')
            if has_video:
                subprocess.run(["ffmpeg", "-y", "-loglevel", "error", "-ss", f"{start:.3f}", *ffmpeg_input_args(video),
                                "-t", f"{end - start:.3f}", "-an", "-c:v", "libx264", "-preset", "ultrafast",
                                "-pix_fmt", "yuv420p", str(out_dir / f"{name}.mp4")], check=True)
                lines.append(f'video = "{name}.mp4"')
        lines.append(f"pause = {pause:.2f}")
        lines.append("")
    path = out_dir / "dialogue.toml"
    path.write_text("\n".join(lines))
    return path
