"""One monocular talking-head video → an actor session (no capture dome needed).

The person in the video is the actor: ``audio.wav`` is the video's sound down-mixed to mono
at 48 kHz (no participant channel), the face code is SMIRK's [expression 50 | jaw 3] (53 values)
per frame, the head rotation is SMIRK's global pose (axis-angle → matrix) and the translation
is zero (SMIRK's weak-perspective camera lives in crop coordinates, not in the world).
Frames are resampled to ``fps`` (30 by default, the rate of the other datasets) by ffmpeg;
frames without a detected face are ``face_valid`` False and their values are interpolated
from the neighbouring frames.

Without SMIRK's weights (``checkpoint=None``) the offline face tracker stands in, the same one
listening uses (:mod:`avflow_cli.participant.face_tracker`): dlib's 68 landmarks → the demo
avatar's face parameters and head rotation, in the same 53 + 3 layout. Those face codes are not
SMIRK's: the session's ``session.json`` says so (``face_code``, ``face_tracker``), and a model
trained on them speaks the demo avatar's parameter space, not FLAME's.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from avflow_cli.constants import CAPTURE_SAMPLE_RATE, FACE_RATE, SMIRK_EXPRESSION_DIM, SMIRK_JAW_DIM
from avflow_cli.data.importers.session import ImportReport, SessionData, session_done, write_session
from avflow_cli.errors import InputFileError

FACE_CODE_DIM = SMIRK_EXPRESSION_DIM + SMIRK_JAW_DIM  # 53
MIN_VALID_FRACTION = 0.1  # fewer detected faces than this is almost certainly the wrong video


def import_video(
    video: str | Path,
    out: str | Path,
    checkpoint: str | Path | None,
    *,
    name: str | None = None,
    fps: float = FACE_RATE,
    device: str = "cpu",
    batch: int = 32,
    force: bool = False,
) -> ImportReport:
    """Write ``out/<name>/`` (name defaults to the video's file stem) as an actor session.

    ``checkpoint``: SMIRK's weights, or None for the offline face tracker (module docstring).
    """
    from avflow_cli.data.resample import fill_linear
    from avflow_cli.participant.face_tracker import TRACKER_NAME, track_video
    from avflow_cli.vision.smirk import axis_angle_to_rotmat, extract_smirk_features
    from avflow_cli.vision.video import extract_audio, probe_video

    video = Path(video)
    info = probe_video(video)
    if not info.has_audio:
        raise InputFileError(video, "video has no audio stream (the actor's speech is needed)")
    name = name or video.stem
    folder = Path(out) / name
    report = ImportReport()
    if session_done(folder) and not force:
        report.existing.append(name)
        return report
    if checkpoint is None:
        feats, valid, rate = track_video(video, fps=fps, show_progress=True)
        face_meta = {"face_code": "offline substitute for SMIRK: demo-avatar face parameters in the SMIRK "
                                  "expression 50 + jaw 3 layout (not SMIRK's FLAME codes)",
                     "face_tracker": TRACKER_NAME,
                     "head_pose_from": "dlib landmarks → calibrated pitch/yaw/roll (axis-angle), translation zero",
                     "smirk_checkpoint": None}
    else:
        feats, valid, rate = extract_smirk_features(video, checkpoint, device, batch, fps=fps, layout="paper")
        face_meta = {"face_code": "SMIRK expression 50 + jaw 3",
                     "face_tracker": "SMIRK",
                     "head_pose_from": "SMIRK pose_params (axis-angle), translation zero",
                     "smirk_checkpoint": str(Path(checkpoint).resolve())}
    if valid.mean() < MIN_VALID_FRACTION:
        raise InputFileError(video, f"a face was found in only {int(valid.sum())} of {len(valid)} frames")
    feats = fill_linear(feats, valid)  # (N, 56)
    with tempfile.TemporaryDirectory() as tmp:
        wav = extract_audio(video, Path(tmp) / "audio.wav", sample_rate=CAPTURE_SAMPLE_RATE, channels=1)
        data = SessionData(
            name=name,
            source="video",
            face_fps=rate,
            face_codes=feats[:, :FACE_CODE_DIM],
            head_rot=axis_angle_to_rotmat(feats[:, FACE_CODE_DIM:]),
            head_trans=np.zeros((len(feats), 3)),
            audio_file=wav,
            face_valid=valid,
            translation_units="none (zeros: a monocular face tracker gives no world translation)",
            meta={
                "video": str(video.resolve()),
                "video_fps": info.fps,
                **face_meta,
                "valid_fraction": float(valid.mean()),
            },
        )
        write_session(folder, data, force=force)
    report.written.append(name)
    return report
