"""The built-in demo corpus: a small dyadic "capture" made from real speech synthesis (docs/ARCHITECTURE.md §5).

Real talking-head data cannot be downloaded here, so avflow generates its own: two speakers
(flite voices ``slt`` for the actor, ``rms``/``awb`` for the participant) alternate turns with
pauses and back-channels; flite prints every phone with its end time (``-psdur``), so the phone
timing is exact. From that timing the demo avatar's face parameters are driven by visemes, the
head moves with speech energy and nods while listening, and everything is written in the session
layout of docs/INTERFACES.md §1 so ``avflow prep`` treats it as real data. The actor's sentences
are also exported in LJSpeech layout (``OUT/ljspeech``) for text-to-tokens training.

With ``actor_speech`` (``avflow demo corpus --actor-speech DIR``) the actor's sentences are real
recordings instead (an LJSpeech-layout folder with forced-aligned phones, e.g. from
``avflow prep import asterisk``): the same face and head generator then follows the real voice.

This module writes sessions and the corpus; the parts live by role: ``audio/flite.py`` (the
flite engine), ``data/demo_conversation.py`` (turns and the 2-channel mix), ``data/demo_face.py``
(visemes and expressions), ``data/demo_head.py`` (head motion), ``data/real_speech.py`` (real
actor speech). Their names are re-exported here for existing imports.

Everything is deterministic for a seed. Letters: N frames at 30 fps, P face parameters,
F face-code dim, S audio samples.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from avflow_cli.audio.flite import INSTALL_HINT, TRACK_RATE, Flite, SpokenUtterance, find_flite, parse_psdur
from avflow_cli.constants import CAPTURE_SAMPLE_RATE, FACE_RATE, SAMPLE_RATE
from avflow_cli.data.demo_conversation import (
    ACTOR_VOICE,
    PARTICIPANT_VOICES,
    Placed,
    _cycle,
    load_backchannels,
    load_sentences,
    mix_dyadic,
    plan_session,
    speaker_track,
)
from avflow_cli.data.demo_face import (
    BILABIALS,
    JAW_MAX_RAD,
    LABIODENTALS,
    OVERSAMPLE,
    REDUCED_VOWELS,
    ROUNDING,
    SMIRK_SEED,
    VOWEL_JAW,
    articulation,
    blink_track,
    face_parameters,
    participant_smirk,
    returned_smiles,
    smile_events,
    smile_track,
    stressed_vowels,
)
from avflow_cli.data.demo_head import FRAME_SAMPLES, head_motion, speech_energy
from avflow_cli.errors import AvflowError
from avflow_cli.render.demo_avatar import FACE_DECODER_FILE

__all__ = [  # re-exported: other modules and branches import these names from here
    "ACTOR_VOICE", "BILABIALS", "FRAME_SAMPLES", "INSTALL_HINT", "JAW_MAX_RAD", "LABIODENTALS", "OVERSAMPLE",
    "PARTICIPANT_VOICES", "REDUCED_VOWELS", "ROUNDING", "SMIRK_SEED", "TRACK_RATE", "VOWEL_JAW", "Flite",
    "Placed", "SpokenUtterance", "articulation", "blink_track", "face_parameters", "find_flite", "generate_corpus",
    "generate_session", "head_motion", "load_backchannels", "load_sentences", "mix_dyadic", "parse_psdur",
    "participant_smirk", "plan_session", "returned_smiles", "session_durations", "smile_events", "smile_track",
    "speaker_track", "speech_energy", "stressed_vowels",
]

GENERATOR = "avflow demo corpus"
GENERATOR_VERSION = 2  # bump when the output for a given seed changes
DEFAULT_SESSION_SECONDS = 60.0
MIN_SESSION_SECONDS = 8.0  # shorter tails are folded into the previous session
MAX_MINUTES = 600.0


# ---------------------------------------------------------------------------------------------
# Sessions and the corpus
# ---------------------------------------------------------------------------------------------
@dataclass
class _Shared:
    """State shared by the sessions of one corpus."""

    flite: Flite
    decoder: object
    actor_text: Iterator[str] | Iterator[SpokenUtterance]
    participant_text: Iterator[str]
    backchannels: list[tuple[str, str | None]]
    actor_voice: str = f"flite:{ACTOR_VOICE}"
    lj_rows: list[tuple[str, str]] = field(default_factory=list)


def voice_label(utt: SpokenUtterance) -> str:
    """``flite:slt`` for flite's voices; real recordings carry their own (``asterisk:…``)."""
    return utt.voice if ":" in utt.voice else f"flite:{utt.voice}"


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
                "voice": voice_label(p.utt),
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
    from avflow_cli.render.demo_avatar import FACE_PARAM_NAMES, euler_to_quat, render_video

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
        "voices": {"actor": shared.actor_voice, "participant": f"flite:{participant_voice}"},
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


def _corpus_request(minutes: float, seed: int, session_seconds: float, size: int, actor_speech: str | None = None) -> dict:
    request = {"minutes": minutes, "seed": seed, "session_seconds": session_seconds, "size": size,
               "version": GENERATOR_VERSION}
    if actor_speech:  # only then: requests of flite-only corpora stay what they were
        request["actor_speech"] = actor_speech
    return request


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
    actor_speech: str | Path | None = None,
) -> dict:
    """Generate the demo corpus into ``out_dir`` (atomically) and return its summary.

    ``actor_speech``: an LJSpeech-layout folder with ``alignments/`` (phones) whose recordings
    the actor says instead of flite (each once per reshuffled pass); the face and head follow
    their forced-aligned phones. Its fingerprint is part of the request recorded in corpus.json.

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
    from avflow_cli.render.demo_avatar import FACE_PARAM_NAMES, FaceDecoder

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
    real = None
    if actor_speech is not None:
        from avflow_cli.data.real_speech import fingerprint, load_real_utterances

        real = load_real_utterances(actor_speech)
        actor_speech = f"{Path(actor_speech).name}@{fingerprint(actor_speech)}"
    request = _corpus_request(float(minutes), int(seed), float(session_seconds), int(size), actor_speech)
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
    actor_rng = np.random.default_rng([seed, 1])
    if real is None:
        actor_text: Iterator[str] | Iterator[SpokenUtterance] = _cycle([sentences[i] for i in order[:half]], actor_rng)
    else:
        from avflow_cli.data.real_speech import cycle_utterances

        actor_text = cycle_utterances(real, actor_rng)
    shared = _Shared(
        flite=flite,
        decoder=FaceDecoder.create(),
        actor_text=actor_text,
        participant_text=_cycle([sentences[i] for i in order[half:]], np.random.default_rng([seed, 2])),
        backchannels=load_backchannels(),
        actor_voice=f"flite:{ACTOR_VOICE}" if real is None else voice_label(real[0]),
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
                "speakers": {"actor": shared.actor_voice,
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
