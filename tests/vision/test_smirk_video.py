"""SMIRK front end on video: streamed decoding, audio extraction, face detection, end-to-end features."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from avflow_cli.audio.io import read_audio
from avflow_cli.errors import InputFileError
from avflow_cli.vision import face_detect as FD
from avflow_cli.vision import smirk as S
from avflow_cli.vision import video as V

FACE_BOX_GRACE_HOPPER = (149, 100, 231, 231)  # x, y, w, h found by the default cascade (512×600 image)


def _face_image() -> np.ndarray:
    """A real portrait that ships with matplotlib (Grace Hopper), as RGB uint8 (600, 512, 3)."""
    import cv2
    import matplotlib

    path = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    if not path.is_file():
        pytest.skip("matplotlib's sample image grace_hopper.jpg is not installed")
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def write_video(path: Path, frames: np.ndarray, fps: float, *, audio_seconds: float | None = None) -> Path:
    """Encode RGB frames (N, H, W, 3) as MPEG-4 (+ a 440 Hz stereo tone) with the ffmpeg CLI."""
    n, h, w, _ = frames.shape
    cmd = ["ffmpeg", "-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-r", str(fps), "-i", "-"]
    if audio_seconds is not None:
        cmd += ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=44100:duration={audio_seconds}", "-ac", "2"]
    cmd += ["-c:v", "mpeg4", "-q:v", "2", "-pix_fmt", "yuv420p"]
    if audio_seconds is not None:
        cmd += ["-c:a", "aac", "-shortest"]
    subprocess.run(cmd + [str(path)], input=frames.tobytes(), check=True)
    return path


@pytest.fixture(scope="module")
def face_video(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    """10 fps, 1 s: frames 0-3 and 6-9 show a face, frames 4-5 are a flat grey wall."""
    import cv2

    face = cv2.resize(_face_image(), (256, 300), interpolation=cv2.INTER_AREA)  # (300, 256, 3)
    blank = np.full_like(face, 128)
    frames = np.stack([face] * 4 + [blank] * 2 + [face] * 4)  # (10, 300, 256, 3)
    path = write_video(tmp_path_factory.mktemp("video") / "talk.mp4", frames, 10, audio_seconds=1.0)
    return path, np.array([True] * 4 + [False] * 2 + [True] * 4)


def test_probe_and_streamed_batches(face_video: tuple[Path, np.ndarray]) -> None:
    path, _ = face_video
    info = V.probe_video(path)
    assert (info.width, info.height, info.fps, info.has_audio) == (256, 300, 10.0, True)
    batches = list(V.iter_frames(path, batch=4))
    assert [len(b) for b in batches] == [4, 4, 2]
    assert batches[0].shape == (4, 300, 256, 3) and batches[0].dtype == np.uint8
    assert abs(float(batches[1][1].mean()) - 128.0) < 3.0  # frame 5 is the grey wall
    assert sum(len(b) for b in V.iter_frames(path, batch=3, fps=5)) == 5


def test_extract_audio_mono_48k(face_video: tuple[Path, np.ndarray], tmp_path: Path) -> None:
    out = V.extract_audio(face_video[0], tmp_path / "a.wav", sample_rate=48000, channels=1)
    audio, sr = read_audio(out)
    assert sr == 48000 and audio.shape[0] == 1
    assert abs(audio.shape[1] / sr - 1.0) < 0.05
    assert not list(tmp_path.glob(".*tmp*"))


def test_video_errors(tmp_path: Path) -> None:
    silent = write_video(tmp_path / "silent.mp4", np.zeros((3, 32, 32, 3), np.uint8), 10)
    with pytest.raises(InputFileError, match="no audio stream"):
        V.extract_audio(silent, tmp_path / "x.wav")
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video at all")
    with pytest.raises(InputFileError, match="not a readable video"):
        V.probe_video(junk)
    with pytest.raises(InputFileError, match="not found"):
        V.probe_video(tmp_path / "absent.mp4")


def test_haar_cascade_finds_the_portrait_face() -> None:
    image = _face_image()
    boxes = FD.FaceDetector().detect(image)
    best = FD.largest_box(boxes)
    assert best is not None
    x, y, w, h = FACE_BOX_GRACE_HOPPER
    assert abs(best[0] + best[2] / 2 - (x + w / 2)) < 20 and abs(best[1] + best[3] / 2 - (y + h / 2)) < 20
    assert FD.FaceDetector().detect(np.full((200, 200, 3), 128, np.uint8)).shape == (0, 4)
    crop = FD.crop_square(image, FD.FaceBox.from_xywh(*best), size=224)
    assert crop.shape == (224, 224, 3)


def test_tracked_window_search_and_fallback() -> None:
    image = np.zeros((720, 1280, 3), np.uint8)
    image[120:720, 300:812] = _face_image()
    det = FD.FaceDetector()
    full = FD.largest_box(det.detect(image))
    near = FD.largest_box(det.detect(image, near=FD.FaceBox.from_xywh(*full)))
    assert np.abs(near[:2] + near[2:] / 2 - (full[:2] + full[2:] / 2)).max() < 10
    far = FD.largest_box(det.detect(image, near=FD.FaceBox(1200.0, 60.0, 80.0)))  # stale track: full search
    np.testing.assert_allclose(far, full)


def test_crop_square_geometry_and_black_fill() -> None:
    img = np.zeros((100, 100, 3), np.uint8)
    img[40:60, 40:60] = 255
    crop = FD.crop_square(img, FD.FaceBox(50.0, 50.0, 20.0), size=21, scale=1.0)
    assert crop[2:19, 2:19].min() == 255  # the white square fills the crop
    edge = FD.crop_square(img, FD.FaceBox(0.0, 0.0, 40.0), size=40, scale=1.0)
    assert edge[:15, :15].max() == 0  # outside the frame is black


def test_largest_box_and_smoother() -> None:
    boxes = np.array([[0, 0, 10, 10], [50, 50, 30, 30], [5, 5, 20, 20]], float)
    np.testing.assert_array_equal(FD.largest_box(boxes), boxes[1])
    assert FD.largest_box(np.zeros((0, 4))) is None
    sm = FD.BoxSmoother(alpha=0.5, max_gap=1)
    a = sm.update(np.array([0.0, 0.0, 20.0, 20.0]))
    b = sm.update(np.array([4.0, 0.0, 20.0, 20.0]))  # small move: averaged
    assert (a.cx, b.cx) == (10.0, 12.0)
    c = sm.update(np.array([100.0, 100.0, 20.0, 20.0]))  # jump: restart at the new face
    assert c.cx == 110.0
    assert sm.update(None) is None and sm.state is not None
    sm.update(None)
    assert sm.state is None  # gap longer than max_gap forgets the track


@pytest.fixture(scope="module")
def random_smirk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("smirk_ckpt") / "SMIRK_em1.pt"
    torch.save(S.release_state_dict(S.SmirkEncoder()), path)
    return path


def test_extract_smirk_features_marks_faceless_frames(face_video: tuple[Path, np.ndarray], random_smirk: Path) -> None:
    path, expected_valid = face_video
    feats, valid, fps = S.extract_smirk_features(path, random_smirk, "cpu", batch=4, show_progress=False)
    assert fps == 10.0
    assert feats.shape == (10, 56) and feats.dtype == np.float32
    np.testing.assert_array_equal(valid, expected_valid)
    assert np.all(feats[~valid] == 0) and np.isfinite(feats).all()
    assert np.abs(feats[valid]).sum() > 0
    np.testing.assert_allclose(feats[0], feats[1], atol=1e-3)  # identical frames, identical features
    rel, _, _ = S.extract_smirk_features(path, random_smirk, batch=8, layout="release", show_progress=False)
    assert rel.shape == (10, 58)
    np.testing.assert_allclose(rel[:, :53], feats[:, :53], atol=1e-4)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_extract_on_gpu_matches_cpu(face_video: tuple[Path, np.ndarray], random_smirk: Path) -> None:
    cpu, _, _ = S.extract_smirk_features(face_video[0], random_smirk, "cpu", show_progress=False)
    gpu, _, _ = S.extract_smirk_features(face_video[0], random_smirk, "cuda", show_progress=False)
    np.testing.assert_allclose(cpu, gpu, atol=1e-3)
