"""The participant (the user the avatar listens to): audio, video or features → guidance streams.

``prepare_participant`` turns a user's recording into the two guidance streams an AV-Flow model
trained with dyadic guidance reads, at FPS: participant tokens (29-d, from the extractor the model
was trained with, see :mod:`.tokens`) and participant visual features (56/58-d: SMIRK when its
weights are present, else the offline landmark tracker of :mod:`.face_tracker`, or a features
file the user made). ``Participant.record`` says which path ran, for logs and ``meta.json``.

Letters: T frames at FPS, D visual feature width.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from avflow_cli import constants as K
from avflow_cli.checks import check_frames
from avflow_cli.errors import AvflowError, InputFileError
from avflow_cli.npzfile import check_plain, npy_shape, npz_shapes, read_npy, read_npz
from avflow_cli.participant.audio import ParticipantAudio, read_participant_audio

FACE_CHOICES = ("auto", "smirk", "tracker")


@dataclass
class Participant:
    """Guidance streams of one user at FPS (None where not given) and what made them."""

    p_tokens: np.ndarray | None  # (T, 29) raw logits
    p_smirk: np.ndarray | None  # (T, D) raw features
    audio: ParticipantAudio | None
    video: Path | None = None
    record: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def frames(self) -> int:
        return max([len(a) for a in (self.p_tokens, self.p_smirk) if a is not None] or [0])


# --- visual features ------------------------------------------------------------------------------
def read_features_file(path: str | Path, dim: int) -> tuple[np.ndarray, float]:
    """User features (N, dim) and their fps from ``.npz`` (``features``/``p_smirk``/``smirk`` + ``fps``)
    or ``.npy`` (fps from the ``NAME.json`` that ``avflow prep smirk`` writes, else 30)."""
    import json

    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, "file not found")
    fps = K.FACE_RATE
    try:  # shapes and fps first (headers, a scalar, a sidecar): nothing large is read before the bound
        if path.suffix == ".npz":
            shapes = npz_shapes(path)
            key = next((k for k in ("features", "p_smirk", "smirk") if k in shapes), None)
            if key is None:
                raise InputFileError(path, f"no 'features', 'p_smirk' or 'smirk' array (has {', '.join(shapes)})")
            if "fps" in shapes:
                fps = float(np.asarray(read_npz(path, keys=["fps"], max_elements=1)["fps"]).reshape(()))
        elif path.suffix == ".npy":
            key, shapes = "", {"": npy_shape(path)}
            side = path.with_suffix(".json")
            if side.is_file():
                fps = float(json.loads(side.read_text()).get("fps", fps))
        else:
            raise InputFileError(path, "participant features must be a .npz or .npy file")
        shape, dtype = shapes[key]
        check_plain(path, key or "features", dtype)
        if len(shape) != 2 or shape[0] == 0:
            raise InputFileError(path, f"expected a (frames, {dim}) array, got shape {shape}")
        if shape[1] != dim:
            raise InputFileError(path, f"features have {shape[1]} columns; this model reads {dim}-d participant features")
        try:  # the timeline they span is allocated at avflow's frame rate: bound it first
            check_frames(shape[0], fps, "features")
        except AvflowError as err:
            raise InputFileError(path, str(err)) from None
        raw = read_npz(path, keys=[key])[key] if key else read_npy(path)
        feats = np.asarray(raw, np.float32)
    except (OSError, ValueError, TypeError) as err:
        raise InputFileError(path, f"not a readable numpy file ({err})") from err
    if not np.isfinite(feats).all():
        raise InputFileError(path, "features contain NaN or Inf")
    return feats, fps


def choose_face(requested: str, demo_trained: bool) -> tuple[str, str]:
    """(``smirk`` | ``tracker``, note). auto: a model trained on demo-avatar features gets the tracker
    (it maps into exactly that layout); others get SMIRK when its weights are found, else the tracker."""
    from avflow_cli.checkpoints import find_checkpoint

    if requested not in FACE_CHOICES:
        raise AvflowError(f"unknown participant face extractor {requested!r}; choose {', '.join(FACE_CHOICES)}")
    if requested != "auto":
        return requested, f"{requested} (requested)"
    if demo_trained:
        return "tracker", "model trained on the demo corpus's participant features: landmark tracker in that layout"
    if find_checkpoint("smirk") is not None:
        return "smirk", "SMIRK (weights found)"
    return "tracker", "warning: SMIRK weights not found; the landmark tracker is an approximate substitute"


def video_features(path: str | Path, face: str, dim: int) -> tuple[np.ndarray, float, str]:
    """(features (N, dim), fps, extractor name) of a participant video."""
    if face == "smirk":
        from avflow_cli.checkpoints import require_checkpoint
        from avflow_cli.data.resample import fill_linear
        from avflow_cli.vision.smirk import extract_smirk_features

        layout = {K.SMIRK_DIM: "paper", K.RELEASE_SMIRK_DIM: "release"}.get(dim)
        if layout is None:
            raise AvflowError(f"this model reads {dim}-d participant features; SMIRK gives 56 or 58")
        feats, valid, fps = extract_smirk_features(path, require_checkpoint("smirk"), layout=layout, show_progress=False)
        if not valid.any():
            raise InputFileError(path, f"no face found in any of its {len(valid)} frames")
        return fill_linear(feats, valid), fps, f"SMIRK ({layout} layout)"
    from avflow_cli.participant.face_tracker import TRACKER_NAME, track_video

    if dim != K.SMIRK_DIM:
        raise AvflowError(f"the offline face tracker gives {K.SMIRK_DIM}-d features; this model reads {dim}-d")
    feats, valid, fps = track_video(path)
    return feats, fps, f"{TRACKER_NAME}; face found in {int(valid.sum())}/{len(valid)} frames"


# --- the whole participant ------------------------------------------------------------------------
def prepare_participant(
    model_config: Any,
    *,
    audio: str | Path | ParticipantAudio | None = None,
    video: str | Path | None = None,
    features: str | Path | None = None,
    channel: str | int | None = None,
    token_extractor: str = "auto",
    face: str = "auto",
    demo_trained: bool = False,
) -> Participant:
    """Guidance streams for ``model_config`` from the user's audio (+ video or features).

    A model trained without guidance gets a Participant whose ``warnings`` say guidance is
    ignored (the avatar still speaks; ``p_tokens``/``p_smirk`` stay None).
    """
    from avflow_cli.data.resample import num_frames, resample_to_fps
    from avflow_cli.participant.tokens import choose_extractor, extract_tokens

    if video is not None and features is not None:
        raise AvflowError("give --participant-video or --participant-features, not both")
    if audio is None and (video is not None or features is not None):
        raise AvflowError("participant video/features need --participant-audio too (the user's voice)")
    pa = audio if isinstance(audio, ParticipantAudio) or audio is None else read_participant_audio(audio, channel)
    part = Participant(None, None, pa, Path(video) if video is not None else None)
    if pa is None:
        return part
    use_tokens = bool(model_config.participant_tokens)
    vis_dim = int(model_config.participant_visual_dim)
    if not use_tokens and not vis_dim:
        part.warnings.append("this model was trained without participant guidance: the participant input is ignored "
                             "(train with `--config dyadic` to get a listening avatar)")
        part.record = {"guidance": "ignored (model trained without guidance)", "audio": pa.source}
        return part
    n = num_frames(len(pa.wav), pa.sample_rate)  # frames at FPS covering the audio
    part.record = {"audio": pa.source, "audio_channels": pa.channel_note, "seconds": round(pa.seconds, 3)}
    if use_tokens:
        extractor, note = choose_extractor(getattr(model_config, "token_source", ""), token_extractor)
        logits, info = extract_tokens(pa.wav, pa.sample_rate, extractor)  # (N_tok, 29) at 50 Hz
        part.p_tokens = resample_to_fps(logits, K.TOKEN_RATE, n_out=n).astype(np.float32)  # (T, 29)
        part.record["tokens"] = {**info, "choice": note}
        if note.startswith("warning"):
            part.warnings.append(note)
    else:
        part.warnings.append("this model reads no participant tokens: the participant's voice is not used as guidance")
    if vis_dim:
        if features is not None:
            feats, fps = read_features_file(features, vis_dim)
            name = f"features file {features}"
        elif video is not None:
            kind, note = choose_face(face, demo_trained)
            feats, fps, name = video_features(video, kind, vis_dim)
            if note.startswith("warning"):
                part.warnings.append(note)
            name = f"{name} [{note}]"
        else:
            feats, fps, name = None, None, "none given: visual guidance channels left at 'no guidance'"
        if feats is not None:
            part.p_smirk = resample_to_fps(feats, fps, n_out=num_frames(len(feats), fps)).astype(np.float32)
        part.record["visual"] = name
    elif video is not None or features is not None:
        part.warnings.append("this model reads no participant visual features: the video/features are ignored")
        part.record["visual"] = "ignored (model trained without visual guidance)"
    return part
