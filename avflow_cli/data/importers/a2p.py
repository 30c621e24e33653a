"""Audio2Photoreal dyadic dataset (facebookresearch/audio2photoreal) → avflow sessions.

Published layout (audio2photoreal README "Dataset", ``data_loaders/get_data.py``)::

    dataset/<SUBJECT>/                 SUBJECT ∈ PXB184, RLW104, TXB805, GQS883
        data_stats.pth                 per-modality mean/std (not needed here)
        sceneNN_audio.wav              2 channels, 48 kHz, 1600 samples per frame (30 fps);
                                       ch0 = this person (actor), ch1 = conversational partner
        sceneNN_body_pose.npy          (T, 104) joint angles of a kinematic skeleton
        sceneNN_face_expression.npy    (T, 256) face codes
        sceneNN_missing_face_frames.npy  indices of missing/corrupted face codes
        wav2vec2_fairseq_base_ls960_asr_ls960_vad100/sceneNN.npy
                                       (2, N_tok, 29) ASR logits, added by av_flow's download

Head pose: AV-Flow's release uses ``body_pose[..., 12:16]`` ("neck and head",
``learn/flowmatching_audiovisual_trainer.py``) as the 4-d input of its head VAE. What each of
the four angles rotates is defined by the renderer's skeleton asset (``static_assets.pt``,
downloaded with the models, not in any public code), so avflow does not guess axes: it stores
the four angles *losslessly* in the session's (R, t) slots::

    head_rot   = Rx(a12) · Ry(a13) · Rz(a14)     (XYZ Euler matrix of the first three)
    head_trans = (a15, 0, 0)                     (radians; translation_units "a2p_angle_rad")

:func:`head_angles_from_rt` inverts this exactly (|a13| < π/2), so generated poses map back to
the four body-pose slots; ``head_params.npy`` keeps the raw (T, 4) angles too.

Missing face frames become ``face_valid`` False and their codes are linearly interpolated
(the release interpolates them; missing rows may hold garbage). Scenes whose every face frame is
missing are skipped, as ``get_data.py`` does. Splits (``session.json["split"]``):
``audio2photoreal`` = per subject, sorted scenes, last 6 → val (first 2 of them) and test
(last 4), as in ``data_loaders/data.py``; ``av_flow`` = last 2 scenes → val (recipe).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from avflow_cli.constants import CAPTURE_SAMPLE_RATE, FACE_RATE, TOKEN_DIM
from avflow_cli.data.arrays import load_array
from avflow_cli.data.importers.session import ImportReport, SessionData, write_session
from avflow_cli.data.resample import fill_linear
from avflow_cli.errors import AvflowError, InputFileError

SUBJECTS = ("PXB184", "RLW104", "TXB805", "GQS883")
BODY_POSE_DIM = 104
HEAD_SLICE = slice(12, 16)  # neck and head joint angles (av_flow trainer)
AUDIO_PER_FRAME = 1600  # 48 kHz / 30 fps
TOKENS_DIR = "wav2vec2_fairseq_base_ls960_asr_ls960_vad100"
SPLIT_SCHEMES = ("audio2photoreal", "av_flow")
TRANSLATION_UNITS = "a2p_angle_rad"


# --- head pose: four joint angles <-> (R, t) ----------------------------------------------------
def head_rt_from_angles(angles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(T, 4) neck/head angles → rotations (T, 3, 3) = Rx·Ry·Rz of the first three, t = (a3, 0, 0)."""
    a = np.asarray(angles, dtype=np.float64)
    cx, sx = np.cos(a[:, 0]), np.sin(a[:, 0])
    cy, sy = np.cos(a[:, 1]), np.sin(a[:, 1])
    cz, sz = np.cos(a[:, 2]), np.sin(a[:, 2])
    rot = np.stack(
        [
            np.stack([cy * cz, -cy * sz, sy], -1),
            np.stack([sx * sy * cz + cx * sz, -sx * sy * sz + cx * cz, -sx * cy], -1),
            np.stack([-cx * sy * cz + sx * sz, cx * sy * sz + sx * cz, cx * cy], -1),
        ],
        -2,
    )  # (T, 3, 3)
    trans = np.zeros((len(a), 3))
    trans[:, 0] = a[:, 3]
    return rot, trans


def head_angles_from_rt(rot: np.ndarray, trans: np.ndarray) -> np.ndarray:
    """Inverse of :func:`head_rt_from_angles`: (T, 3, 3), (T, 3) → (T, 4) body_pose[12:16] angles."""
    r = np.asarray(rot, dtype=np.float64)
    ax = np.arctan2(-r[:, 1, 2], r[:, 2, 2])
    ay = np.arcsin(np.clip(r[:, 0, 2], -1.0, 1.0))
    az = np.arctan2(-r[:, 0, 1], r[:, 0, 0])
    return np.stack([ax, ay, az, np.asarray(trans)[:, 0]], axis=1)  # (T, 4)


# --- discovery ----------------------------------------------------------------------------------
def find_subject_dirs(src: Path) -> list[Path]:
    """``src`` itself when it holds scenes, else its sub-folders that do (sorted)."""
    if not src.is_dir():
        raise InputFileError(src, "not a directory")
    if any(src.glob("*_body_pose.npy")):
        return [src]
    subjects = sorted(p for p in src.iterdir() if p.is_dir() and any(p.glob("*_body_pose.npy")))
    if not subjects:
        raise InputFileError(src, "no Audio2Photoreal scenes (*_body_pose.npy) here or in its sub-folders")
    return subjects


def scene_names(subject_dir: Path) -> list[str]:
    """Scene prefixes ('scene01', …) in sorted file order, as get_data.py lists them."""
    return sorted(p.name[: -len("_body_pose.npy")] for p in subject_dir.glob("*_body_pose.npy"))


def assign_splits(scenes: list[str], scheme: str) -> dict[str, str]:
    """Split labels of one subject's kept scenes, in their sorted order."""
    n = len(scenes)
    if scheme == "audio2photoreal":
        labels = ["train" if i < n - 6 else "val" if i < n - 4 else "test" for i in range(n)]
    elif scheme == "av_flow":
        labels = ["train" if i < n - 2 else "val" for i in range(n)]
    else:
        raise AvflowError(f"unknown split scheme {scheme!r}; use one of {', '.join(SPLIT_SCHEMES)}")
    return dict(zip(scenes, labels))


# --- one scene ------------------------------------------------------------------------------------
def read_scene(subject_dir: Path, scene: str) -> SessionData | str:
    """Load and check one scene; returns the reason string when the scene must be skipped."""
    base = subject_dir / scene
    pose_path = Path(f"{base}_body_pose.npy")
    face_path = Path(f"{base}_face_expression.npy")
    missing_path = Path(f"{base}_missing_face_frames.npy")
    audio_path = Path(f"{base}_audio.wav")
    body = load_array(pose_path, ndim=2, allow_nan=True, allow_inf=True)  # head columns checked below
    if body.shape[1] != BODY_POSE_DIM:
        raise InputFileError(pose_path, f"expected (T, {BODY_POSE_DIM}) joint angles, got {body.shape}")
    face = load_array(face_path, ndim=2, allow_nan=True, allow_inf=True).astype(np.float64)
    if len(face) != len(body):
        raise InputFileError(face_path, f"{len(face)} frames but {pose_path.name} has {len(body)}")
    missing = load_array(missing_path, ndim=(0, 1), allow_empty=True).reshape(-1)
    if missing.size and (not np.issubdtype(missing.dtype, np.integer) or missing.min() < 0 or missing.max() >= len(face)):
        raise InputFileError(missing_path, f"frame indices must be integers in [0, {len(face)})")
    valid = np.ones(len(face), dtype=bool)
    valid[missing.astype(np.int64)] = False
    valid &= np.isfinite(face).all(axis=1)
    if not valid.any():
        return "every face frame is missing"
    angles = body[:, HEAD_SLICE].astype(np.float64)
    if not np.isfinite(angles).all():
        raise InputFileError(pose_path, "neck/head angles (columns 12:16) contain NaN or Inf")
    if not audio_path.is_file():
        raise InputFileError(audio_path, "file not found")
    info = sf.info(str(audio_path))
    if info.channels != 2 or info.samplerate != CAPTURE_SAMPLE_RATE:
        raise InputFileError(audio_path, f"expected 2-channel {CAPTURE_SAMPLE_RATE} Hz audio, got {info.channels} ch at {info.samplerate} Hz")
    rot, trans = head_rt_from_angles(angles)
    data = SessionData(
        name=f"{subject_dir.name}_{scene}",
        source="a2p",
        face_fps=FACE_RATE,
        face_codes=fill_linear(face, valid),
        head_rot=rot,
        head_trans=trans,
        audio_file=audio_path,
        face_valid=valid,
        translation_units=TRANSLATION_UNITS,
        extra_arrays={"head_params.npy": angles},
        meta={
            "subject": subject_dir.name,
            "scene": scene,
            "head_pose_from": "body_pose[:, 12:16] as Rx·Ry·Rz(a12, a13, a14), t = (a15, 0, 0)",
            "audio_frames_expected": int(len(face) * AUDIO_PER_FRAME),
            "audio_frames": int(info.frames),
        },
    )
    tok_path = subject_dir / TOKENS_DIR / f"{scene}.npy"
    if tok_path.is_file():
        tokens = load_array(tok_path, ndim=3)
        if tokens.shape[0] != 2 or tokens.shape[2] != TOKEN_DIM:
            raise InputFileError(tok_path, f"expected (2, N_tok, {TOKEN_DIM}) logits, got {tokens.shape}")
        data.tokens_actor, data.tokens_participant = tokens[0], tokens[1]
    return data


def import_a2p(
    src: str | Path,
    out: str | Path,
    *,
    split_scheme: str = "audio2photoreal",
    link_audio: bool = False,
    force: bool = False,
) -> ImportReport:
    """Convert every subject/scene under ``src`` into ``out/<SUBJECT>_<scene>/`` sessions."""
    from avflow_cli.console import progress

    if split_scheme not in SPLIT_SCHEMES:
        raise AvflowError(f"unknown split scheme {split_scheme!r}; use one of {', '.join(SPLIT_SCHEMES)}")
    src, out = Path(src), Path(out)
    report = ImportReport()
    subjects = find_subject_dirs(src)
    todo = [(s, scene) for s in subjects for scene in scene_names(s)]
    from avflow_cli.render.avatar import carry_face_decoder

    first = todo[0][0] / f"{todo[0][1]}_face_expression.npy" if todo else None
    carry_face_decoder(subjects, out, first, head_pose="fixed", force=force)  # head angles are not [R | t]
    with progress() as bar:
        task = bar.add_task("Audio2Photoreal", total=len(todo), status="")
        for subject in subjects:
            loaded: dict[str, SessionData] = {}
            for scene in scene_names(subject):
                bar.update(task, status=f"{subject.name}/{scene}")
                result = read_scene(subject, scene)
                if isinstance(result, str):
                    report.skipped.append((f"{subject.name}_{scene}", result))
                else:
                    loaded[scene] = result
                bar.advance(task)
            splits = assign_splits(sorted(loaded), split_scheme)
            for scene, data in loaded.items():
                data.meta["split"] = splits[scene]
                folder = out / data.name
                if write_session(folder, data, link_audio=link_audio, force=force):
                    report.written.append(data.name)
                else:
                    report.existing.append(data.name)
    return report
