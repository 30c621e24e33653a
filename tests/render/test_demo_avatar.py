"""The demo avatar: exact face-code decoder, mouth measurements, pose helpers and the renderer."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from avflow_cli.errors import AvflowError, InputFileError
from avflow_cli.render import demo_avatar as da

P = da.NUM_PARAMS


def _params(**values: float) -> np.ndarray:
    row = da.NEUTRAL_PARAMS.copy()
    for name, value in values.items():
        row[da.PARAM_INDEX[name]] = value
    return row


def _random_params(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    lo, hi = da.FACE_PARAM_RANGES[:, 0], da.FACE_PARAM_RANGES[:, 1]
    return (lo + (hi - lo) * rng.random((n, P))).astype(np.float32)


# --- decoder --------------------------------------------------------------------------------------
def test_decoder_inverts_the_code_map_exactly() -> None:
    dec = da.FaceDecoder.create()
    params = _random_params(200)
    codes = dec.encode(params)  # (T, F)
    assert codes.shape == (200, da.NUM_PARAMS) and codes.dtype == np.float32
    np.testing.assert_allclose(dec.params(codes), params, atol=1e-5)
    noisy = dec.encode(params, np.random.default_rng(1))
    assert not np.allclose(noisy, codes)
    np.testing.assert_allclose(dec.params(noisy), params, atol=5 * da.CODE_NOISE_STD)  # ≤ 5 σ per parameter


def test_decoder_is_fixed_and_roundtrips_through_npz(tmp_path: Path) -> None:
    a, b = da.FaceDecoder.create(), da.FaceDecoder.create()
    np.testing.assert_array_equal(a.weight, b.weight)
    assert not np.array_equal(a.weight, da.FaceDecoder.create(seed=7).weight)
    path = a.save(tmp_path / "face_decoder.npz")
    loaded = da.FaceDecoder.load(path)
    np.testing.assert_array_equal(loaded.weight, a.weight)
    codes = a.encode(_random_params(5))
    np.testing.assert_allclose(loaded.lip_distance(codes), da.lip_distance(_random_params(5)), atol=1e-4)
    with np.load(path) as data:
        assert float(data["lip_closed_threshold"]) == da.LIP_CLOSED_THRESHOLD
        assert tuple(data["param_names"]) == da.FACE_PARAM_NAMES


def test_decoder_load_and_dim_errors(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="not found"):
        da.FaceDecoder.load(tmp_path / "missing.npz")
    bad = tmp_path / "bad.npz"
    np.savez(bad, something=np.zeros(3))
    with pytest.raises(InputFileError, match="not a demo face decoder"):
        da.FaceDecoder.load(bad)
    with pytest.raises(AvflowError, match=f"expects {da.NUM_PARAMS}"):
        da.FaceDecoder.create().params(np.zeros((3, da.NUM_PARAMS + 1)))


def test_demo_codes_are_full_rank() -> None:
    """Every code dimension carries information (docs/ARCHITECTURE.md §5): no redundant noise directions."""
    codes = da.FaceDecoder.create().encode(_random_params(500))  # (T, F)
    sv = np.linalg.svd(codes - codes.mean(axis=0), compute_uv=False)
    assert codes.shape[1] == da.NUM_PARAMS
    assert sv[-1] / sv[0] > 0.2, sv


# --- mouth measurements ---------------------------------------------------------------------------
def test_lip_distance_and_thresholds() -> None:
    assert da.lip_distance(da.NEUTRAL_PARAMS) < da.LIP_CLOSED_THRESHOLD  # relaxed mouth counts as closed
    assert da.lip_distance(_params(jaw_open=0.8, lip_closure=1.0)) == 0.0  # bilabial: closed whatever the jaw
    openings = [float(da.lip_distance(_params(jaw_open=j))) for j in (0.2, 0.5, 0.9)]
    assert openings == sorted(openings) and openings[0] > da.LIP_CLOSED_THRESHOLD


def test_mouth_corner_distance_and_smile_threshold() -> None:
    assert da.mouth_corner_distance(da.NEUTRAL_PARAMS) < da.SMILE_THRESHOLD
    assert da.mouth_corner_distance(_params(smile=1.0)) > da.SMILE_THRESHOLD
    assert da.mouth_corner_distance(_params(lip_round=1.0)) < da.mouth_corner_distance(da.NEUTRAL_PARAMS)


def test_clip_params_handles_wild_values() -> None:
    wild = np.array([[np.nan, 5.0, -3.0, np.inf, 0.5, 2.0, -1.0, 9.0, -9.0]], dtype=np.float32)
    clipped = da.clip_params(wild)
    assert np.isfinite(clipped).all()
    assert (clipped >= da.FACE_PARAM_RANGES[:, 0]).all() and (clipped <= da.FACE_PARAM_RANGES[:, 1]).all()
    assert clipped[0, 0] == 0.0 and clipped[0, 1] == 1.0 and clipped[0, 7] == 1.0
    with pytest.raises(AvflowError, match="columns"):
        da.clip_params(np.zeros((2, P + 1)))


# --- pose helpers ---------------------------------------------------------------------------------
def test_euler_to_quat_matches_scipy() -> None:
    from scipy.spatial.transform import Rotation

    rng = np.random.default_rng(0)
    pitch, yaw, roll = rng.uniform(-0.8, 0.8, size=(3, 20))
    rot = da.quat_to_rotmat(da.euler_to_quat(pitch, yaw, roll))  # (20, 3, 3)
    expected = Rotation.from_euler("ZYX", np.stack([roll, yaw, pitch], axis=1)).as_matrix()
    np.testing.assert_allclose(rot, expected, atol=1e-12)


def test_quat_to_rotmat_normalises_and_survives_zeros() -> None:
    quats = np.array([[2.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0], [np.nan, 1, 0, 0], [1, 1, 0, 0]])
    rot = da.quat_to_rotmat(quats)
    np.testing.assert_allclose(rot[:3], np.broadcast_to(np.eye(3), (3, 3, 3)), atol=1e-12)
    np.testing.assert_allclose(rot[3] @ rot[3].T, np.eye(3), atol=1e-12)
    np.testing.assert_allclose(rot[3][1:, 1:], [[0, -1], [1, 0]], atol=1e-12)  # 90 degrees about x


# --- renderer -------------------------------------------------------------------------------------
def _pose(pitch: float = 0.0, yaw: float = 0.0, roll: float = 0.0, t=(0.0, 0.0, 1000.0)) -> np.ndarray:
    q = da.euler_to_quat(np.array(pitch), np.array(yaw), np.array(roll))
    return np.concatenate([q, t])


def _mouth_dark_pixels(img: np.ndarray, palette: str = "actor") -> int:
    """Pixels of the open mouth: its dark inside, teeth and tongue."""
    inside = np.zeros(img.shape[:2], bool)
    for name in ("mouth", "teeth", "tongue"):
        inside |= np.abs(img.astype(int) - np.array(da.PALETTES[palette][name])).sum(axis=2) < 30
    return int(inside.sum())


def test_render_frame_shape_and_content() -> None:
    img = da.render_frame(da.NEUTRAL_PARAMS, None, 96)
    assert img.shape == (96, 96, 3) and img.dtype == np.uint8
    assert (img[0, 0] == da.PALETTES["actor"]["bg"]).all()  # background in the corner
    centre = img[30:66, 30:66].astype(int)
    skin = np.abs(centre - da.PALETTES["actor"]["skin"]).sum(axis=2) < 40
    assert skin.mean() > 0.5  # a face in the middle
    np.testing.assert_array_equal(img, da.render_frame(da.NEUTRAL_PARAMS, _pose(), 96))  # None = neutral pose
    other = da.render_frame(da.NEUTRAL_PARAMS, None, 96, palette="participant")
    assert not np.array_equal(img, other)


def test_render_frame_follows_the_mouth() -> None:
    closed = _mouth_dark_pixels(da.render_frame(_params(jaw_open=0.0), None, 128))
    half = _mouth_dark_pixels(da.render_frame(_params(jaw_open=0.4), None, 128))
    wide = _mouth_dark_pixels(da.render_frame(_params(jaw_open=1.0), None, 128))
    shut = _mouth_dark_pixels(da.render_frame(_params(jaw_open=1.0, lip_closure=1.0), None, 128))
    assert closed < half < wide
    assert shut < half


def _skin(img: np.ndarray) -> np.ndarray:
    return np.abs(img.astype(int) - da.PALETTES["actor"]["skin"]).sum(axis=2) < 40


def test_render_frame_follows_head_pose() -> None:
    def centroid_x(img: np.ndarray) -> float:
        return float(np.nonzero(_skin(img))[1].mean())

    base = centroid_x(da.render_frame(da.NEUTRAL_PARAMS, _pose(), 128))
    moved = centroid_x(da.render_frame(da.NEUTRAL_PARAMS, _pose(t=(60.0, 0.0, 1000.0)), 128))
    assert moved > base + 5  # +x translation moves the head right
    turned = da.render_frame(da.NEUTRAL_PARAMS, _pose(yaw=0.5), 128)
    assert not np.array_equal(turned, da.render_frame(da.NEUTRAL_PARAMS, _pose(), 128))
    far = da.render_frame(da.NEUTRAL_PARAMS, _pose(t=(0.0, 0.0, 2000.0)), 128)
    assert _skin(far).sum() < 0.5 * _skin(da.render_frame(da.NEUTRAL_PARAMS, _pose(), 128)).sum()


def test_render_survives_generated_garbage() -> None:
    rng = np.random.default_rng(0)
    params = rng.normal(0, 10, size=(6, P)).astype(np.float32)
    params[0, 0] = np.nan
    pose = rng.normal(0, 1000, size=(6, 7))
    pose[1, :4] = 0.0
    pose[2, 5] = np.inf
    frames = list(da.render_frames(params, pose, 64))
    assert len(frames) == 6 and all(f.shape == (64, 64, 3) for f in frames)
    with pytest.raises(AvflowError, match="head pose"):
        list(da.render_frames(params, pose[:, :6], 64))


needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg not installed")


@needs_ffmpeg
def test_render_video_writes_frames_and_audio(tmp_path: Path) -> None:
    params = _random_params(15)
    poses = np.stack([_pose(yaw=0.02 * i) for i in range(15)])
    audio = 0.1 * np.sin(np.linspace(0, 200, 8000)).astype(np.float32)  # 0.5 s at 16 kHz
    out = da.render_video(tmp_path / "clip.mp4", params, poses, 30.0, audio, 16000, size=63)
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-count_frames", "-show_entries",
         "stream=codec_type,width,height,nb_read_frames,r_frame_rate", "-of", "json", str(out)],
        capture_output=True, text=True, check=True,
    )
    streams = {s["codec_type"]: s for s in json.loads(probe.stdout)["streams"]}
    assert set(streams) == {"video", "audio"}
    assert streams["video"]["width"] == 64  # odd size rounded up for yuv420p
    assert streams["video"]["r_frame_rate"] == "30/1"
    assert int(streams["video"]["nb_read_frames"]) == 15
    assert [p.name for p in tmp_path.iterdir()] == ["clip.mp4"]  # no temporary files left


@needs_ffmpeg
def test_render_video_rejects_bad_arrays(tmp_path: Path) -> None:
    with pytest.raises(AvflowError, match="non-empty"):
        da.render_video(tmp_path / "a.mp4", np.zeros((0, P)), None, 30.0)
    with pytest.raises(AvflowError, match="head pose"):
        da.render_video(tmp_path / "a.mp4", np.zeros((4, P)), np.zeros((4, 4)), 30.0)
    with pytest.raises(AvflowError, match="audio_sr"):
        da.render_video(tmp_path / "a.mp4", np.zeros((4, P)), None, 30.0, np.zeros(100))
    assert not any(tmp_path.iterdir())
