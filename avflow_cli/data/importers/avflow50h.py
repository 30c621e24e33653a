"""The AV-Flow authors' 50 h dyadic dataset (facebookresearch/av_flow README) → avflow sessions.

Published layout (README "Dataset"; ``data/dataset.py:SequenceDataset``; docs/release_format.md §6)::

    50h_dataset/
        audio/{seg}.wav                          stereo 48 kHz: ch0 actor, ch1 participant
        expression_codes/{seg}.npy               (N, 256) face codes, 30 fps
        headpose/{seg}--headpose.npy             (N, 3|4, 4) [R | t] per frame, 30 fps
        headpose/headpose_normstats/head_{qvec,translation}_{mean,std}.npy   (release model)
        wav2vec2_fairseq_base_ls960_asr_ls960_vad100/{seg}.npy   (2, N_tok, 29) ASR logits ≈ 50 Hz
        participant/camera01/smirk_outputs/{seg}--expression.npy, {seg}--headpose.npy
        participant/camera01/smirk_outputs/stats/{expression,headpose}_{min,max}.npy
        head_vae/iter-0500000.pt

Segments are listed from ``expression_codes/*.npy``. Per session: audio copied as is,
``face_codes.npy`` = expression codes, ``head_rot``/``head_trans`` = R and t of the [R | t]
matrices (translation units not stated; the renderer's default head distance of 1000 suggests
mm), ``tokens_actor.npy``/``tokens_participant.npy`` = token file [0]/[1], and
``participant_smirk.npy`` = [expression | headpose] concatenated as stored (58 values in the
release, split not documented). The release skips segments without participant files; here
they are kept without participant features unless ``require_participant``. The SMIRK min/max
stats (the release's participant normalisation) are written once as
``OUT/participant_smirk_stats.npz`` (``min``, ``max``, ``expression_dim``). Split: segment
names containing 20240408 or 20240509 → val, the rest train (recipe).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from avflow_cli.constants import CAPTURE_SAMPLE_RATE, FACE_RATE, TOKEN_DIM
from avflow_cli.data.arrays import load_array
from avflow_cli.data.importers.session import ImportReport, SessionData, write_session
from avflow_cli.data.resample import fill_linear, fill_nearest
from avflow_cli.errors import InputFileError
from avflow_cli.fsutil import atomic_path

TOKENS_DIR = "wav2vec2_fairseq_base_ls960_asr_ls960_vad100"
SMIRK_DIR = Path("participant") / "camera01" / "smirk_outputs"
VAL_DATES = ("20240408", "20240509")  # recipes/flow_matching_audiovisual.py


def find_dataset_root(src: Path) -> Path:
    """``src`` or its ``50h_dataset`` sub-folder, whichever holds ``expression_codes/``."""
    for cand in (src, src / "50h_dataset"):
        if (cand / "expression_codes").is_dir():
            return cand
    raise InputFileError(src, "not the 50 h dataset (no expression_codes/ folder here or in 50h_dataset/)")


def segment_names(root: Path) -> list[str]:
    names = sorted(p.stem for p in (root / "expression_codes").glob("*.npy"))
    if not names:
        raise InputFileError(root / "expression_codes", "no segment files (*.npy)")
    return names


def split_of(segment: str) -> str:
    return "val" if any(d in segment for d in VAL_DATES) else "train"


def read_smirk_stats(root: Path) -> dict[str, np.ndarray] | None:
    """The participant SMIRK min/max files concatenated as [expression | headpose], or None."""
    stats = root / SMIRK_DIR / "stats"
    names = [stats / f"{part}_{kind}.npy" for part in ("expression", "headpose") for kind in ("min", "max")]
    if not all(p.is_file() for p in names):
        return None
    e_min, e_max, h_min, h_max = (load_array(p).reshape(-1).astype(np.float32) for p in names)
    return {
        "min": np.concatenate([e_min, h_min]),
        "max": np.concatenate([e_max, h_max]),
        "expression_dim": np.array(len(e_min)),
    }


def read_segment(root: Path, seg: str, *, require_participant: bool) -> SessionData | str:
    """Load and check one segment; returns a reason string when it must be skipped."""
    expr_path = root / "expression_codes" / f"{seg}.npy"
    pose_path = root / "headpose" / f"{seg}--headpose.npy"
    audio_path = root / "audio" / f"{seg}.wav"
    tok_path = root / TOKENS_DIR / f"{seg}.npy"
    expr = load_array(expr_path, ndim=2, allow_nan=True, allow_inf=True)  # lost frames: non-finite
    pose = load_array(pose_path, ndim=3, allow_nan=True, allow_inf=True)
    if pose.shape[1:] not in ((3, 4), (4, 4)):
        raise InputFileError(pose_path, f"expected (N, 3|4, 4) [R|t] matrices, got {pose.shape}")
    if len(pose) != len(expr):
        raise InputFileError(pose_path, f"{len(pose)} frames but {expr_path.name} has {len(expr)}")
    if not audio_path.is_file():
        raise InputFileError(audio_path, "file not found")
    info = sf.info(str(audio_path))
    if info.channels != 2 or info.samplerate != CAPTURE_SAMPLE_RATE:
        raise InputFileError(audio_path, f"expected stereo {CAPTURE_SAMPLE_RATE} Hz audio, got {info.channels} ch at {info.samplerate} Hz")
    valid = np.isfinite(expr).all(axis=1) & np.isfinite(pose[:, :3, :]).all(axis=(1, 2))  # (N,)
    if not valid.any():
        return "no frame has finite expression codes and head pose"
    data = SessionData(
        name=seg,
        source="avflow50h",
        face_fps=FACE_RATE,
        face_codes=fill_linear(expr, valid),
        head_rot=fill_nearest(pose[:, :3, :3], valid),
        head_trans=fill_nearest(pose[:, :3, 3], valid),
        audio_file=audio_path,
        face_valid=None if valid.all() else valid,
        translation_units="mm",
        meta={"split": split_of(seg)},
    )
    if tok_path.is_file():
        tokens = load_array(tok_path, ndim=3)
        if tokens.shape[0] != 2 or tokens.shape[2] != TOKEN_DIM:
            raise InputFileError(tok_path, f"expected (2, N_tok, {TOKEN_DIM}) logits, got {tokens.shape}")
        data.tokens_actor, data.tokens_participant = tokens[0], tokens[1]
        data.meta["token_frames_per_face_frame"] = tokens.shape[1] / len(expr)
    p_expr = root / SMIRK_DIR / f"{seg}--expression.npy"
    p_head = root / SMIRK_DIR / f"{seg}--headpose.npy"
    if p_expr.is_file() and p_head.is_file():
        e, h = load_array(p_expr, ndim=2), load_array(p_head, ndim=2)
        if len(e) != len(h):
            raise InputFileError(p_head, f"{len(h)} frames but {p_expr.name} has {len(e)}")
        if len(e) != len(expr):
            raise InputFileError(p_expr, f"{len(e)} frames but the actor has {len(expr)}")
        data.participant_smirk = np.concatenate([e, h], axis=1)  # (N, 58) in the release
        data.meta["participant_smirk_split"] = {"expression": int(e.shape[1]), "headpose": int(h.shape[1])}
        if not np.any(e):
            data.meta["participant_smirk_all_zero"] = True
    elif require_participant:
        return "no participant SMIRK files"
    return data


def import_avflow50h(
    src: str | Path,
    out: str | Path,
    *,
    require_participant: bool = False,
    link_audio: bool = False,
    force: bool = False,
) -> ImportReport:
    """Convert every segment of the 50 h dataset into ``out/<segment>/`` sessions."""
    from avflow_cli.console import progress

    root = find_dataset_root(Path(src))
    out = Path(out)
    report = ImportReport()
    stats = read_smirk_stats(root)
    if stats is not None:
        with atomic_path(out / "participant_smirk_stats.npz") as tmp:
            np.savez(tmp, **stats)
    segments = segment_names(root)
    from avflow_cli.render.avatar import carry_face_decoder

    carry_face_decoder([root], out, root / "expression_codes" / f"{segments[0]}.npy" if segments else None,
                       head_pose="camera", force=force)
    with progress() as bar:
        task = bar.add_task("50 h dataset", total=len(segments), status="")
        for seg in segments:
            bar.update(task, status=seg)
            folder = out / seg
            if (folder / "session.json").is_file() and not force:
                report.existing.append(seg)
            else:
                data = read_segment(root, seg, require_participant=require_participant)
                if isinstance(data, str):
                    report.skipped.append((seg, data))
                elif write_session(folder, data, link_audio=link_audio, force=force):
                    report.written.append(seg)
            bar.advance(task)
    return report
