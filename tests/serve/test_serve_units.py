"""The serve building blocks without a server: stream chunk format, job folders, the worker queue."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from avflow_cli import constants as K
from avflow_cli.errors import AvflowError
from avflow_cli.serve.chunks import ChunkAssembler
from avflow_cli.serve.engine import NEUTRAL_POSE, Chunk
from avflow_cli.serve.jobs import INCOMPLETE, INTERRUPTED, JobStore, valid_job_id
from avflow_cli.serve.protocol import chunk_header, chunk_payload, decode_chunk
from avflow_cli.serve.settings import ServeSettings
from avflow_cli.serve.worker import GenerationWorker, QueueFull
from avflow_cli.stream import StreamChunk


def test_chunk_round_trip_and_size_check() -> None:
    rng = np.random.default_rng(0)
    chunk = Chunk(seq=3, audio=rng.normal(size=512).astype(np.float32), t_start=1.25,
                  motion=rng.normal(size=(2, 16)).astype(np.float32), frame_start=40,
                  images=[b"\xff\xd8abc", b"\xff\xd8de"], image_start=14)
    header = chunk_header(chunk, sample_rate=22050, fps=86.1)
    assert header == {"type": "chunk", "seq": 3, "sample_rate": 22050, "fps": 86.1, "n_audio": 512, "t_start": 1.25,
                      "n_frames": 2, "frame_start": 40, "motion_dim": 16, "n_images": 2, "image_start": 14,
                      "image_fps": 30.0, "image_format": "jpeg", "image_bytes": [5, 4]}
    payload = chunk_payload(chunk)
    decoded = decode_chunk(json.loads(json.dumps(header)), payload)
    np.testing.assert_array_equal(decoded.audio, chunk.audio)
    np.testing.assert_array_equal(decoded.motion, chunk.motion)
    assert decoded.images == chunk.images
    with pytest.raises(ValueError, match="payload has"):
        decode_chunk(header, payload[:-4])


def _piece(start: int, face: np.ndarray, wav_start: int, n_wav: int, pose: np.ndarray | None = None,
           pose_start: int = 0) -> StreamChunk:
    return StreamChunk(start=start, face=face, head_latent=np.zeros((len(face), 8), np.float32),
                       mel=np.zeros((len(face), 80), np.float32), wav=np.full(n_wav, 0.5, np.float32),
                       wav_start=wav_start, head_pose=pose, head_pose_start=pose_start)


def test_assembler_waits_for_head_poses_and_cuts_frames_like_the_preview() -> None:
    from avflow_cli.data.resample import resample_headpose, resample_to_fps

    rng = np.random.default_rng(1)
    face = rng.normal(size=(100, 4)).astype(np.float32)
    pose = np.tile(NEUTRAL_POSE, (100, 1)) + rng.normal(0, 0.01, size=(100, 7)).astype(np.float32)
    drawn: list[tuple[np.ndarray, np.ndarray]] = []

    def render(f: np.ndarray, p: np.ndarray | None) -> list[bytes]:
        drawn.append((f, p))
        return [b"img"] * len(f)

    asm = ChunkAssembler(face_dim=4, has_head_vae=True, neutral_pose=NEUTRAL_POSE, render=render)
    parts = [asm.add(_piece(0, face[:40], 0, 0)),  # faces before any pose: nothing but nothing to send
             asm.add(_piece(40, face[40:80], 0, 2048, pose[:64], 0)),  # poses of a whole VAE window arrive
             asm.add(_piece(80, face[80:], 2048, 4096, pose[64:], 64))]
    parts.append(asm.finish())
    assert parts[0] is None
    assert [len(p["motion"]) for p in parts[1:3]] == [64, 36] and parts[3] is None
    assert parts[1]["frame_start"] == 0 and parts[2]["frame_start"] == 64 and parts[2]["t_start"] == 2048
    np.testing.assert_array_equal(np.concatenate([p["motion"] for p in parts[1:3]]), np.concatenate([face, pose], 1))
    n_video = int(np.floor(100 / K.FPS * 30 + 1e-9))  # the preview's frame count
    assert sum(len(p["images"]) for p in parts[1:3]) == n_video
    np.testing.assert_allclose(np.concatenate([f for f, _ in drawn]), resample_to_fps(face, K.FPS, n_video, 30.0), atol=1e-6)
    np.testing.assert_allclose(np.concatenate([p for _, p in drawn]), resample_headpose(pose, K.FPS, n_video, 30.0), atol=1e-6)
    with pytest.raises(RuntimeError, match="out of order"):
        asm.add(_piece(5, face[:4], 6144, 0))


def _store(root: Path, ttl: float = 100.0) -> JobStore:
    return JobStore(root, ttl_s=ttl, server_id="test")


def _complete_results(result: Path, preview: bool = False) -> None:
    """What Synthesizer.save leaves (contents abbreviated: recovery checks presence and meta.json)."""
    result.mkdir()
    (result / "speech.wav").write_bytes(b"RIFF")
    (result / "motion.npz").write_bytes(b"PK\x03\x04")
    (result / "meta.json").write_text(json.dumps({"preview": "avatar" if preview else "none (--no-preview)"}))
    if preview:
        (result / "preview.mp4").write_bytes(b"\x00\x00\x00\x18ftypisom")


def test_restart_fails_unfinished_jobs_keeps_done_ones_and_drops_broken_records(tmp_path: Path) -> None:
    store = _store(tmp_path)
    queued = store.create("synthesize", {"text": "a"})
    running = store.create("synthesize", {"text": "b"})
    store.update(running.id, status="running", started=time.time())
    (tmp_path / running.id / "result.partial").mkdir()
    done = store.create("synthesize", {"text": "c"})
    _complete_results(tmp_path / done.id / "result")
    store.update(done.id, status="done", finished=time.time())
    old = store.create("synthesize", {"text": "d"})
    store.update(old.id, status="done", finished=time.time() - 1000)  # past its time to live
    broken = tmp_path / ("a" * 32)
    broken.mkdir()
    (broken / "job.json").write_text('{"id": "not-this"}')
    store.close()

    again = _store(tmp_path)
    assert again.recovered == {"kept": 1, "interrupted": 2, "removed": 2}
    for job in (queued, running):
        record = again.get(job.id)
        assert record is not None and record.status == "failed" and record.error == INTERRUPTED
        assert [p.name for p in (tmp_path / job.id).iterdir()] == ["job.json"]
    assert again.result_file(done.id, "speech.wav") == (tmp_path / done.id / "result" / "speech.wav").resolve()
    assert again.get(old.id) is None and not (tmp_path / old.id).exists()
    assert not broken.exists()


def test_restart_fails_done_jobs_whose_results_are_incomplete_and_removes_temporaries(tmp_path: Path) -> None:
    store = _store(tmp_path)
    jobs = {name: store.create("synthesize", {"text": name}) for name in
            ("whole", "with_preview", "no_motion", "bad_meta", "no_preview_file", "no_result", "failed")}
    _complete_results(tmp_path / jobs["whole"].id / "result")
    _complete_results(tmp_path / jobs["with_preview"].id / "result", preview=True)
    _complete_results(tmp_path / jobs["no_motion"].id / "result")
    (tmp_path / jobs["no_motion"].id / "result" / "motion.npz").unlink()
    _complete_results(tmp_path / jobs["bad_meta"].id / "result")
    (tmp_path / jobs["bad_meta"].id / "result" / "meta.json").write_text('{"preview": ')  # cut short
    _complete_results(tmp_path / jobs["no_preview_file"].id / "result", preview=True)
    (tmp_path / jobs["no_preview_file"].id / "result" / "preview.mp4").unlink()
    for name, job in jobs.items():
        store.update(job.id, status="failed" if name == "failed" else "done", finished=time.time(),
                     result={"seconds": 1.0})
    # a killed server's half-written temporaries beside the results (fsutil's naming)
    for name in ("whole", "failed"):
        (tmp_path / jobs[name].id / ".result.host-123.abc.tmp").mkdir()
        (tmp_path / jobs[name].id / ".result.host-123.abc.tmp" / "speech.wav").write_bytes(b"RI")
    (tmp_path / jobs["whole"].id / ".job.host-123.xyz.tmp.json").write_text("{")
    store.close()

    again = _store(tmp_path)
    assert again.recovered == {"kept": 3, "interrupted": 4, "removed": 0}
    for name in ("whole", "with_preview"):
        assert again.get(jobs[name].id).status == "done"
        assert sorted(p.name for p in (tmp_path / jobs[name].id).iterdir()) == ["job.json", "result"]
        assert again.result_file(jobs[name].id, "motion.npz") is not None
    for name in ("no_motion", "bad_meta", "no_preview_file", "no_result"):
        record = again.get(jobs[name].id)
        assert record.status == "failed" and record.error == INCOMPLETE and record.result is None
        assert [p.name for p in (tmp_path / jobs[name].id).iterdir()] == ["job.json"]
        assert again.result_file(jobs[name].id, "speech.wav") is None
    assert [p.name for p in (tmp_path / jobs["failed"].id).iterdir()] == ["job.json"]
    on_disk = json.loads((tmp_path / jobs["no_motion"].id / "job.json").read_text())
    assert on_disk["status"] == "failed" and on_disk["error"] == INCOMPLETE  # recorded, not only in memory


def test_host_and_origin_rules() -> None:
    from avflow_cli.serve.security import HostPolicy, same_origin

    local = HostPolicy("127.0.0.1")
    assert all(local.allows(h) for h in ("127.0.0.1:8000", "localhost:8000", "LOCALHOST", "[::1]:80"))
    assert not any(local.allows(h) for h in ("evil.example:8000", "192.168.1.5:8000", "", None, "a b", "x:y:z"))
    named = HostPolicy("0.0.0.0", ("avatar.lab.example",))
    assert named.allows("avatar.lab.example:9000") and named.allows("192.168.1.5:9000") and named.allows("[fe80::1]")
    assert not named.allows("rebind.evil.example:9000")  # a name: the rebinding case
    assert "--allow-host" in named.refusal("rebind.evil.example")
    assert same_origin("http://127.0.0.1:8000", "127.0.0.1:8000") and same_origin("https://a.example", "a.example:443")
    assert not same_origin("http://127.0.0.1:8001", "127.0.0.1:8000")
    assert not same_origin("http://evil.example:8000", "127.0.0.1:8000")
    assert not same_origin("null", "127.0.0.1:8000") and not same_origin("file://", "127.0.0.1:8000")


def test_server_paths_become_public_names(tmp_path: Path) -> None:
    from avflow_cli.serve.paths import PathRedactor, public_name

    model = tmp_path / "models" / "avflow"
    jobs = tmp_path / "state" / "jobs"
    redact = PathRedactor.for_server([model, tmp_path / "models" / "t2t"], jobs)
    upload = jobs / ("a" * 32) / "inputs" / "participant.wav"
    job = redact.extended([(upload, "me.webm")])
    text = f"{upload}: silent; model {model} (t2t {tmp_path / 'models' / 't2t'}) in {jobs}/x"
    assert job.text(text) == "me.webm: silent; model avflow (t2t t2t) in jobs/x"
    assert job.json({"components": {"avflow": str(model)}, "list": [str(upload), 3]}) == \
        {"components": {"avflow": "avflow"}, "list": ["me.webm", 3]}
    assert str(tmp_path) not in job.text(text)
    assert public_name("C:\\Users\\me\\talk.wav", "audio") == "talk.wav"
    assert public_name("/etc/passwd", "audio") == "passwd" and public_name("", "audio") == "audio"
    assert public_name("a\udc80b\nc.wav", "audio") == "a?b?c.wav"


def test_a_text_file_named_npz_is_called_what_it_is(tmp_path: Path) -> None:
    from avflow_cli.errors import InputFileError
    from avflow_cli.render.motion import load_motion
    from avflow_cli.render.demo_avatar import FaceDecoder

    text = tmp_path / "face_decoder.npz"
    text.write_text("these are not arrays\n")
    for load in (FaceDecoder.load, load_motion):
        with pytest.raises(InputFileError) as info:
            load(text)
        assert "not a valid .npz archive (a zip of .npy arrays): it is a text file" in str(info.value)
        assert "pickled" not in str(info.value)
    npy = tmp_path / "motion.npz"
    np.save(npy.with_suffix(".npy"), np.zeros(3))
    npy.with_suffix(".npy").rename(npy)
    with pytest.raises(InputFileError, match="a single .npy array, not an .npz archive"):
        load_motion(npy)


def test_a_second_store_on_the_same_folder_is_refused(tmp_path: Path) -> None:
    first = _store(tmp_path)
    with pytest.raises(AvflowError, match="another `avflow serve`"):
        _store(tmp_path)
    first.close()
    _store(tmp_path).close()  # free again once the first one let go


def test_result_files_are_named_and_stay_inside_the_job(tmp_path: Path) -> None:
    store = _store(tmp_path)
    job = store.create("synthesize", {"text": "x"})
    result = tmp_path / job.id / "result"
    result.mkdir()
    (result / "speech.wav").write_bytes(b"RIFF")
    (result / "motion.npz").symlink_to(tmp_path / ".serve.lock")  # a link that leaves the job folder
    assert store.result_file(job.id, "speech.wav") is None  # not done yet
    store.update(job.id, status="done", finished=time.time())
    assert store.result_file(job.id, "speech.wav") is not None
    for name in ("motion.npz", "job.json", "../job.json", "preview.mp4", ""):
        assert store.result_file(job.id, name) is None
    assert not valid_job_id("../" + job.id[3:]) and store.get("../../etc") is None
    store.close()


def test_worker_runs_one_task_at_a_time_and_bounds_its_queue() -> None:
    worker = GenerationWorker(capacity=2)
    gate, order, running = threading.Event(), [], []

    def task(name: str):
        def run(ticket) -> None:  # noqa: ANN001
            running.append(name)
            assert len(running) == 1, "two generations at once"
            if name == "a":
                gate.wait(30)
            order.append(name)
            running.remove(name)
        return run

    a = worker.submit(task("a"))
    a.started.wait(10)
    b, c = worker.submit(task("b")), worker.submit(task("c"))
    assert (worker.position(a), worker.position(b), worker.position(c)) == (0, 1, 2)
    with pytest.raises(QueueFull, match="2 requests are already waiting"):
        worker.submit(task("d"))
    dropped: list[str] = []
    assert worker.drop(b)
    d_ticket = worker.submit(task("d"), on_drop=lambda: dropped.append("d"))
    gate.set()
    for ticket in (a, c, d_ticket):
        assert ticket.done.wait(10)
    assert order == ["a", "c", "d"] and dropped == []
    worker.stop()


def test_stopping_drops_waiting_tasks_with_their_callbacks() -> None:
    worker = GenerationWorker(capacity=3)
    gate, dropped = threading.Event(), []
    first = worker.submit(lambda t: gate.wait(30))
    first.started.wait(10)
    worker.submit(lambda t: None, on_drop=lambda: dropped.append(1))
    worker.submit(lambda t: None, on_drop=lambda: dropped.append(2))
    stopper = threading.Thread(target=worker.stop, kwargs={"timeout": 30})
    stopper.start()  # drops the waiting tasks at once, then waits for the running one
    deadline = time.monotonic() + 10
    while len(dropped) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert dropped == [1, 2] and not first.done.is_set()
    gate.set()
    stopper.join(10)
    assert first.done.is_set()
    with pytest.raises(QueueFull, match="shutting down"):
        worker.submit(lambda t: None)


def test_settings_refuse_nonsense(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="queue_size"):
        ServeSettings(jobs_dir=tmp_path, queue_size=0)
    with pytest.raises(ValueError, match="job_ttl_s"):
        ServeSettings(jobs_dir=tmp_path, job_ttl_s=0)


def test_server_remembers_the_signal_that_stopped_it() -> None:
    """`avflow serve` exits 128 + that signal even when asyncio loses the re-raised Ctrl-C (a race under load)."""
    import signal

    import uvicorn

    from avflow_cli.serve.server import SignalledServer

    server = SignalledServer(uvicorn.Config(app=lambda scope, receive, send: None))
    assert server.stop_signal is None
    server.handle_exit(signal.SIGINT, None)
    server.handle_exit(signal.SIGTERM, None)
    assert server.stop_signal == signal.SIGINT and server.should_exit
