"""The offline participant face tracker: landmarks → demo parameters → the demo's 56-d SMIRK layout."""

from __future__ import annotations

import numpy as np

from avflow_cli import constants as K
from avflow_cli.participant.face_tracker import (
    TARGETS, calibration_frames, landmarks_of_stills, predict_targets, targets_to_features, track_video,
)


def test_shipped_calibration_recovers_fresh_renders() -> None:
    """On demo-avatar frames it has never seen, the visible parameters and the head rotation come back."""
    targets, frames = calibration_frames(60, seed=123)
    pts, found = landmarks_of_stills(frames)
    assert found.mean() > 0.8
    pred = predict_targets(pts[found])
    truth = targets[found]
    corr = {name: np.corrcoef(pred[:, k], truth[:, k])[0, 1] for k, name in enumerate(TARGETS)}
    assert corr["gap"] > 0.8 and corr["smile"] > 0.75, corr
    assert min(corr["pitch"], corr["yaw"], corr["roll"]) > 0.9, corr
    assert np.abs(pred[:, 6:] - truth[:, 6:]).mean() < np.radians(4.0)  # head rotation within a few degrees


def test_features_follow_the_demo_corpus_map() -> None:
    """targets_to_features is exactly participant_smirk of the corresponding parameters."""
    from avflow_cli.data.demo_corpus import participant_smirk
    from avflow_cli.render.demo_avatar import NEUTRAL_PARAMS, PARAM_INDEX, euler_to_quat, quat_to_rotmat

    t = np.zeros((2, len(TARGETS)))
    t[1, TARGETS.index("smile")] = 0.8
    t[1, TARGETS.index("yaw")] = 0.1
    feats = targets_to_features(t)
    params = np.repeat(NEUTRAL_PARAMS[None], 2, axis=0).astype(np.float64)
    params[1, PARAM_INDEX["smile"]] = 0.8
    rot = quat_to_rotmat(euler_to_quat(t[:, 6], t[:, 7], t[:, 8]))
    np.testing.assert_allclose(feats, participant_smirk(params, rot), atol=1e-6)
    assert feats.shape == (2, K.SMIRK_DIM)


def test_video_smile_shows_in_the_features(face_video) -> None:
    path, smile = face_video
    feats, valid, fps = track_video(path)
    assert valid.all() and fps == K.FACE_RATE and feats.shape == (len(smile), K.SMIRK_DIM)
    from avflow_cli.participant.face_tracker import params_from_features
    from avflow_cli.render.demo_avatar import PARAM_INDEX

    seen = params_from_features(feats)[:, PARAM_INDEX["smile"]]  # (N,)
    assert seen[smile == 1].mean() > 0.6 and seen[smile == 0].mean() < 0.2
    assert np.corrcoef(seen, smile)[0, 1] > 0.9
