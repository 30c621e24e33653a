"""`avflow render`, the previews that use the avatars, and the importers that carry them."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from avflow_cli import constants as K
from avflow_cli.cli.main import app
from avflow_cli.render import avatar as A
from avflow_cli.render.demo_avatar import FaceDecoder

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "codec_avatar"
pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")


def _probe(path: Path) -> dict[str, dict]:
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_type,width,height,nb_frames,r_frame_rate",
                          "-of", "json", str(path)], capture_output=True, text=True, check=True)
    return {s["codec_type"]: s for s in json.loads(out.stdout)["streams"]}


def _pose(frames: int) -> np.ndarray:
    """The release's default pose (y, z flipped) at 450 mm: quaternion (0, 1, 0, 0) + translation."""
    pose = np.zeros((frames, 7), np.float32)
    pose[:, 1] = 1.0
    pose[:, 6] = 450.0
    return pose


@pytest.fixture()
def model_dir(tmp_path: Path) -> Path:
    """A model directory carrying the fixture's codec avatar (as `avflow import release` leaves it)."""
    files = A.find_release_avatar_files(FIX / "release")
    assert files is not None
    model = tmp_path / "models" / "avflow"
    model.mkdir(parents=True)
    (model / "config.json").write_text("{}")
    A.import_release_avatar(files).save(model / A.AVATAR_DIR)
    return model


@pytest.fixture()
def synth_out(tmp_path: Path, model_dir: Path) -> Path:
    """A synth-like output folder: motion.npz (86.13 fps, 12-d codes), speech.wav, meta.json."""
    out = tmp_path / "out"
    out.mkdir()
    rng = np.random.default_rng(0)
    frames = 172  # 2.0 s
    np.savez(out / "motion.npz", face=rng.normal(0, 0.3, (frames, 12)).astype(np.float32), head_pose=_pose(frames),
             fps=np.float64(K.FPS))
    sf.write(out / "speech.wav", 0.1 * np.sin(np.arange(44100) / 10.0), 22050)
    (out / "meta.json").write_text(json.dumps({"components": {"avflow": str(model_dir)}}))
    return out


def _run(*args: str) -> object:
    return CliRunner().invoke(app, ["render", *args])


def test_render_uses_the_models_avatar_and_muxes_the_speech(synth_out: Path, tmp_path: Path) -> None:
    video = tmp_path / "face.mp4"
    res = _run(str(synth_out / "motion.npz"), "-o", str(video), "--size", "96")
    assert res.exit_code == 0, res.output
    streams = _probe(video)
    assert streams["video"]["width"] == 96 and streams["video"]["r_frame_rate"] == "30/1"
    assert int(streams["video"]["nb_frames"]) == int(172 / K.FPS * 30)  # 59 frames at 30 fps
    assert "audio" in streams
    frame = subprocess.run(["ffmpeg", "-v", "error", "-i", str(video), "-vf", "select=eq(n\\,5)", "-frames:v", "1",
                            "-f", "rawvideo", "-pix_fmt", "rgb24", "-"], capture_output=True, check=True).stdout
    img = np.frombuffer(frame, np.uint8).reshape(96, 96, 3)
    assert (img.max(axis=2) > 40).mean() > 0.05  # the textured patch is in view


def test_render_takes_the_release_folder_a_model_dir_or_the_demo_decoder(synth_out: Path, model_dir: Path, tmp_path: Path) -> None:
    res = _run(str(synth_out), "-o", str(tmp_path / "a.mp4"), "--decoder", str(FIX / "release"), "--size", "64", "--no-audio")
    assert res.exit_code == 0, res.output
    assert "audio" not in _probe(tmp_path / "a.mp4")
    res = _run(str(synth_out), "-o", str(tmp_path / "b.mp4"), "--decoder", str(model_dir), "--size", "64")
    assert res.exit_code == 0, res.output
    decoder = FaceDecoder.create()
    decoder.save(tmp_path / "face_decoder.npz")
    demo = tmp_path / "demo_motion.npz"
    params = np.zeros((60, len(decoder.param_names)), np.float32)
    params[:, 0] = np.linspace(0, 1, 60)  # the jaw opens
    np.savez(demo, face=decoder.encode(params), fps=np.float64(30.0))
    res = _run(str(demo), "-o", str(tmp_path / "c.mp4"), "--decoder", str(tmp_path / "face_decoder.npz"), "--size", "64")
    assert res.exit_code == 0, res.output
    assert int(_probe(tmp_path / "c.mp4")["video"]["nb_frames"]) == 60


def test_release_style_head_rotations_are_read(synth_out: Path, tmp_path: Path) -> None:
    motion = np.load(synth_out / "motion.npz")
    rot = np.broadcast_to(np.diag([1.0, -1.0, -1.0]), (172, 3, 3))
    np.savez(tmp_path / "m.npz", face=motion["face"], head_R=rot, head_t=np.tile([0.0, 0.0, 450.0], (172, 1)))
    a, b = tmp_path / "a.mp4", tmp_path / "b.mp4"
    assert _run(str(tmp_path / "m.npz"), "-o", str(a), "--decoder", str(FIX / "release"), "--size", "64").exit_code == 0
    assert _run(str(synth_out), "-o", str(b), "--decoder", str(FIX / "release"), "--size", "64", "--no-audio").exit_code == 0
    grab = ["-vf", "select=eq(n\\,3)", "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
    fa = subprocess.run(["ffmpeg", "-v", "error", "-i", str(a), *grab], capture_output=True).stdout
    fb = subprocess.run(["ffmpeg", "-v", "error", "-i", str(b), *grab], capture_output=True).stdout
    assert fa == fb  # the same pose given as [R | t] or as a quaternion


# --- bad input: one line, exit 2, nothing written -------------------------------------------------
def _refused(res: object, out: Path, words: str) -> None:
    assert res.exit_code == 2, res.output
    assert words in res.output and "Traceback" not in res.output
    assert not out.exists()
    if out.parent.is_dir():
        assert not [p for p in out.parent.iterdir() if ".tmp" in p.name]


@pytest.mark.parametrize(
    ("arrays", "words"),
    [
        ({"mel": np.zeros((10, 80))}, "has no 'face' array"),
        ({"face": np.zeros((10, 12)), "head_pose": np.zeros((10, 6))}, "'head_pose' must be (T, 7)"),
        ({"face": np.zeros((10, 12)), "head_pose": _pose(9)}, "'face' has 10 frames but the head pose 9"),
        ({"face": np.full((10, 12), np.nan)}, "'face' contains NaN"),
        ({"face": np.zeros((10, 16))}, "16-d but the avatar's decoder takes 12-d"),
        ({"face": np.zeros((10, 12)), "fps": np.float64(0)}, "'fps' must be positive"),
    ],
)
def test_wrong_motion_layouts_are_refused(tmp_path: Path, arrays: dict, words: str) -> None:
    np.savez(tmp_path / "m.npz", **arrays)
    out = tmp_path / "v.mp4"
    _refused(_run(str(tmp_path / "m.npz"), "-o", str(out), "--decoder", str(FIX / "release")), out, words)


def test_bad_outputs_and_decoders_are_refused(synth_out: Path, tmp_path: Path) -> None:
    _refused(_run(str(synth_out), "-o", str(tmp_path)), tmp_path / "nothing", "is a folder")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    _refused(_run(str(synth_out), "-o", str(blocker / "v.mp4")), blocker / "v.mp4", "cannot write")
    out = tmp_path / "v.mp4"
    _refused(_run(str(synth_out), "-o", str(out), "--decoder", str(tmp_path / "nowhere")), out, "not found")
    _refused(_run(str(synth_out), "-o", str(out), "--decoder", str(FIX / "a2p_body_dec_small.ckpt")), out,
             "not a face decoder")
    (synth_out / "meta.json").unlink()
    _refused(_run(str(synth_out), "-o", str(out)), out, "give --decoder")
    _refused(_run(str(tmp_path / "missing.npz"), "-o", str(out)), out, "file not found")


def test_a_failure_while_rendering_leaves_nothing(synth_out: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from avflow_cli.render import video

    def broken(self, face, head_pose):  # noqa: ANN001
        yield next(iter(original(self, face, head_pose)))
        raise RuntimeError("decoder crashed")

    original = video.CodecAvatarFrames.frames
    monkeypatch.setattr(video.CodecAvatarFrames, "frames", broken)
    out = tmp_path / "v.mp4"
    with pytest.raises(RuntimeError, match="decoder crashed"):
        video.render_motion(out, np.zeros((40, 12), np.float32), None, K.FPS,
                            video.open_frame_source(FIX / "release", size=32, device="cpu"))
    assert not out.exists() and not [p for p in tmp_path.iterdir() if ".tmp" in p.name]


# --- previews -----------------------------------------------------------------------------------
def test_previews_dispatch_on_what_the_model_carries(model_dir: Path, tmp_path: Path) -> None:
    from avflow_cli.preview import avatar_preview, comparison_preview
    from avflow_cli.synth import find_face_decoder

    assert find_face_decoder(model_dir) == model_dir / A.AVATAR_DIR
    face = np.random.default_rng(1).normal(0, 0.3, (86, 12)).astype(np.float32)
    kind = avatar_preview(tmp_path / "p.mp4", face, _pose(86), find_face_decoder(model_dir), audio=np.zeros(22050),
                          audio_sr=22050, device="cpu")
    assert kind.startswith("codec avatar (512²")
    assert _probe(tmp_path / "p.mp4")["video"]["width"] == 512
    shutil.rmtree(model_dir / A.AVATAR_DIR)
    decoder = FaceDecoder.create()
    decoder.save(model_dir / "face_decoder.npz")
    assert find_face_decoder(model_dir) == model_dir / "face_decoder.npz"
    codes = decoder.encode(np.zeros((86, len(decoder.param_names))))
    pose = np.tile(np.array([1, 0, 0, 0, 0, 0, 1000.0], np.float32), (86, 1))
    assert avatar_preview(tmp_path / "d.mp4", codes, pose, model_dir / "face_decoder.npz", audio=None, audio_sr=None,
                          device="cpu") == "avatar"
    name = comparison_preview(tmp_path / "c.mp4", codes, pose, codes[:60], None, model_dir / "face_decoder.npz",
                              audio=None, audio_sr=None, device="cpu")
    streams = _probe(tmp_path / "c.mp4")
    assert name.startswith("demo avatar") and streams["video"]["width"] == 1024 and streams["video"]["height"] == 512
    assert int(streams["video"]["nb_frames"]) == int(60 / K.FPS * 30)


def test_import_a2p_and_50h_carry_the_subjects_decoder(tmp_path: Path) -> None:
    """The dataset importers' step: decoder → OUT/avatar; prep and train carry it along."""
    subject = tmp_path / "dataset" / "PXB184"
    shutil.copytree(FIX / "release" / "decoder", subject / "decoder")
    shutil.copy(FIX / "release" / "face_topo_small_neck.obj", subject)
    np.save(subject / "scene01_face_expression.npy", np.zeros((5, 12), np.float32))
    sessions = tmp_path / "sessions"
    path = A.carry_face_decoder([subject], sessions, subject / "scene01_face_expression.npy", head_pose="fixed")
    assert path == sessions / A.AVATAR_DIR and A.CodecAvatar.load(path).head_pose_mode == "fixed"
    shards, model = tmp_path / "shards", tmp_path / "model"
    assert A.carry_avatar(sessions, shards) == shards / A.AVATAR_DIR
    assert A.carry_avatar(shards, model) == model / A.AVATAR_DIR
    assert A.carry_avatar(shards, model) == model / A.AVATAR_DIR  # again: already there, kept
    assert A.carry_avatar(tmp_path / "dataset", model) is None
    # codes of another width than the decoder's: refused before any session is written
    np.save(subject / "scene01_face_expression.npy", np.zeros((5, 256), np.float32))
    with pytest.raises(Exception, match="takes 12-d codes but the sessions' face codes are 256-d"):
        A.carry_face_decoder([subject], tmp_path / "s2", subject / "scene01_face_expression.npy", head_pose="fixed")
    assert not (tmp_path / "s2").exists()
    # two subjects with decoders: none is carried, and it says why
    other = tmp_path / "dataset" / "RLW104"
    shutil.copytree(subject, other)
    path, message = A.import_dataset_avatar([subject, other], tmp_path / "s3", code_dim=None)
    assert path is None and "several subjects" in message


def test_fixed_pose_avatars_ignore_skeleton_angles(model_dir: Path) -> None:
    from avflow_cli.render.video import CodecAvatarFrames

    avatar = A.CodecAvatar.load(model_dir / A.AVATAR_DIR)
    face = np.zeros((2, 12), np.float32)
    angles = np.tile(np.array([0.9, 0.1, 0.2, 0.3, 0.4, 0.0, 0.0], np.float32), (2, 1))  # not a camera pose
    frames = CodecAvatarFrames(avatar, 64)
    avatar.source["head_pose"] = "fixed"
    fixed = list(frames.frames(face, angles))
    default = list(frames.frames(face, None))
    np.testing.assert_array_equal(fixed[0], default[0])


def test_eval_plots_render_generated_beside_ground_truth(synthetic_shards: Path, tmp_path: Path) -> None:
    """`eval --plots` writes plots/ID.mp4 with the avatar the shards (or model) carry."""
    from avflow_cli.data.schema import ShardIndex
    from avflow_cli.data.shards import read_clip
    from avflow_cli.evaluate import EvalSettings, evaluate_dir
    from avflow_cli.metrics.generated import ClipPrediction, save_prediction

    shards = tmp_path / "shards"
    shutil.copytree(synthetic_shards, shards)
    rng = np.random.default_rng(0)
    FaceDecoder(weight=rng.normal(size=(16, 9)), bias=np.zeros(16)).save(shards / "face_decoder.npz")
    gen = tmp_path / "gen"
    rec = ShardIndex.load(shards).split("test")[0]
    clip = read_clip(shards, rec)
    save_prediction(gen / rec.id, ClipPrediction(face=clip["face"], head_pose=clip["head_pose"], mel=clip["mel"],
                                                 meta={"text": "hello", "seconds": 4.0, "timings_s": {}}))
    evaluate_dir(gen, shards, settings=EvalSettings(wer=False, plots=1), show_progress=False)
    video = _probe(gen / "eval" / "plots" / f"{rec.id}.mp4")["video"]
    assert (video["width"], video["height"]) == (1024, 512)  # generated | ground truth
    assert int(video["nb_frames"]) == int(len(clip["face"]) / K.FPS * 30)
