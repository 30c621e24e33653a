"""The scores of benchmarks/real_frontends.py: speech/silence F1, boundary errors, landmark error, tracking."""

from __future__ import annotations

import numpy as np
import pytest

from avflow_cli.errors import AvflowError
from avflow_cli.metrics.frontends import boundary_errors, inter_ocular, landmark_nme, plain_label, speech_silence_scores, track_stats


def test_speech_and_silence_f1_by_hand() -> None:
    # 10 s on a 10 ms grid: truth speech 2–6 s, prediction 3–7 s → tp 3 s, fp 1 s, fn 1 s; silence tp 5 s, fp 1, fn 1
    s = speech_silence_scores([(3.0, 7.0)], [(2.0, 6.0)], 10.0)
    assert s["speech_f1"] == pytest.approx(0.75, abs=0.01)
    assert s["silence_f1"] == pytest.approx(2 * 5 / (2 * 5 + 1 + 1), abs=0.01)
    assert s["accuracy"] == pytest.approx(0.8, abs=0.01)
    perfect = speech_silence_scores([(2.0, 6.0)], [(2.0, 6.0)], 10.0)
    assert perfect["speech_f1"] == perfect["silence_f1"] == 1.0
    with pytest.raises(AvflowError, match="duration"):
        speech_silence_scores([], [], 0.0)


def test_boundary_errors_match_in_order_and_in_time() -> None:
    ref = [("THE", 0.0, 0.2), ("cat", 0.2, 0.5), ("", 0.5, 0.9), ("sat", 0.9, 1.3), ("the", 5.0, 5.2)]
    hyp = [("the", 0.01, 0.22), ("hat", 0.22, 0.5), ("sat", 0.95, 1.30), ("the", 1.4, 1.5)]
    e = boundary_errors(hyp, ref)
    assert e.reference == 4 and e.matched == 2  # "hat" ≠ "cat"; the last "the" lies 3.6 s away from its namesake
    np.testing.assert_allclose(e.start, [0.01, 0.05])
    np.testing.assert_allclose(e.end, [0.02, 0.0], atol=1e-12)
    s = e.summary()
    assert s["median_ms"] == pytest.approx(15.0) and s["within_20ms"] == pytest.approx(0.75) and s["match_rate"] == 0.5
    both = e + e
    assert both.matched == 4 and both.reference == 8
    assert plain_label("IH0") == "ih" and plain_label("I'm,") == "i'm"
    assert np.isnan(boundary_errors([], ref).summary()["median_ms"])


def test_landmark_nme_is_scale_free() -> None:
    rng = np.random.default_rng(0)
    truth = rng.uniform(0, 100, (2, 68, 2))
    truth[:, 36], truth[:, 45] = [10.0, 50.0], [60.0, 50.0]  # inter-ocular 50 px
    pred = truth + np.array([3.0, 4.0])  # every point 5 px off
    np.testing.assert_allclose(inter_ocular(truth), [50.0, 50.0])
    np.testing.assert_allclose(landmark_nme(pred, truth), [0.1, 0.1])
    np.testing.assert_allclose(landmark_nme(pred * 2, truth * 2), [0.1, 0.1])
    with pytest.raises(AvflowError, match="68, 2"):
        landmark_nme(pred[:, :5], truth[:, :5])


def test_track_stats_see_jitter_and_pose_steps() -> None:
    base = np.zeros((6, 68, 2))
    base[:, 36], base[:, 45] = [0.0, 0.0], [100.0, 0.0]
    still = track_stats(base, np.ones(6, bool), np.zeros((6, 3)))
    assert still["coverage"] == 1.0 and still["jitter"] == 0.0 and still["pose_accel_deg"] == 0.0
    moving = base + (np.arange(6) * 2.0)[:, None, None]  # constant velocity: no jitter
    assert track_stats(moving, np.ones(6, bool))["jitter"] == pytest.approx(0.0)
    shaky = base.copy()
    shaky[3] += 5.0  # one frame 5 px off in x and y: 2nd differences -2δ, ... around it
    valid = np.array([True, True, True, True, True, False])
    angles = np.zeros((6, 3))
    angles[3, 1] = np.radians(2.0)
    s = track_stats(shaky, valid, angles)
    assert s["coverage"] == pytest.approx(5 / 6)
    # triples (0,1,2), (1,2,3), (2,3,4) are valid: second differences 0, δ, −2δ (δ = 5√2 px) ÷ IOD 100
    assert s["jitter"] == pytest.approx(np.sqrt((0 + 1 + 4) / 3) * 5 * np.sqrt(2) / 100)
    assert s["pose_accel_deg"] == pytest.approx(np.sqrt((0 + 4 + 16) / 9))
    with pytest.raises(AvflowError, match="flags"):
        track_stats(base, np.ones(5, bool))
