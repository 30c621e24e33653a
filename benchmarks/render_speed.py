"""Rendering speed: frames per second of the PyTorch rasteriser and of the whole codec avatar.

Usage: python benchmarks/render_speed.py [--sizes 512 1024] [--frames 12] [--obj face_topo_small_neck.obj]

Rows, per device (CPU; CUDA too when present):

- ``raster``: projection + z-buffer + perspective-correct UVs + texture sampling +
  anti-aliasing of a mesh of the release's size (7306 vertices; an ellipsoidal head unless
  ``--obj`` gives the release's mesh) with a 1024² texture, the head turning between frames;
- ``raster, no AA``: the same without the anti-aliasing pass;
- ``avatar``: the release's full-size face decoder (random weights of its architecture: 256-d
  codes → geometry + 1024² view-dependent texture) followed by the rasteriser — what
  ``avflow render`` / the previews pay per frame.

- ``demo avatar``: the built-in demo avatar (OpenCV drawing; CPU only) at the corpus's
  participant-video size (192²) and the preview size (512²), and the CPU seconds the demo
  corpus spends on one minute of participant video (drawing + x264 encoding, ffmpeg included).

Ratios are measured in this run, on this machine (``× raster 1024``: speed relative to the
rasteriser at 1024² on the same device).
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from avflow_cli.render.avatar import CodecAvatar
from avflow_cli.render.camera import DEFAULT_HEADPOSE, head_relative, project, release_camera
from avflow_cli.render.decoder import CodecFaceDecoder, DecoderSpec
from avflow_cli.render.obj import Topology, read_obj
from avflow_cli.render.raster import MeshRasterizer

RELEASE_SPEC = DecoderSpec(256, 256, 8, 7306, (256, 256, 128, 128, 64, 64, 32, 8, 3), (256, 256, 128, 128, 64, 64, 2))


def ellipsoid_head(n_lat: int = 74, n_lon: int = 99, axes: tuple[float, float, float] = (75.0, 95.0, 85.0)) -> Topology:
    """A closed lat-long ellipsoid (about the release mesh's 7306 vertices) with a UV per vertex."""
    lat = np.linspace(0.02, np.pi - 0.02, n_lat)
    lon = np.linspace(0, 2 * np.pi, n_lon, endpoint=False)
    la, lo = np.meshgrid(lat, lon, indexing="ij")
    v = np.stack([axes[0] * np.sin(la) * np.cos(lo), axes[1] * np.cos(la), axes[2] * np.sin(la) * np.sin(lo)], -1)
    vt = np.stack([lo / (2 * np.pi), 1 - la / np.pi], -1).reshape(-1, 2)
    idx = np.arange(n_lat * n_lon).reshape(n_lat, n_lon)
    a, b = idx[:-1], np.roll(idx, -1, axis=1)[:-1]
    c, d = idx[1:], np.roll(idx, -1, axis=1)[1:]
    faces = np.concatenate([np.stack([a, b, d], -1).reshape(-1, 3), np.stack([a, d, c], -1).reshape(-1, 3)])
    return Topology(v.reshape(-1, 3).astype(np.float32), vt.astype(np.float32), faces, faces.copy())


def poses(frames: int) -> torch.Tensor:
    """The release's default pose, turning ±25° about the vertical axis over the frames. (T, 3, 4)"""
    out = torch.tensor(DEFAULT_HEADPOSE).repeat(frames, 1, 1)
    for i, a in enumerate(np.linspace(-0.45, 0.45, frames)):
        rot = torch.tensor([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]], dtype=torch.float32)
        out[i, :, :3] = out[i, :, :3] @ rot
    return out


def time_raster(topo: Topology, size: int, frames: int, device: torch.device, antialiased: bool) -> float:
    cam = release_camera(size)
    raster = MeshRasterizer(topo, device)
    tex = torch.rand(1, 3, 1024, 1024, device=device) * 255
    verts = torch.as_tensor(topo.v, device=device)[None]
    hp = poses(frames).to(device)
    rel = head_relative(hp)

    def one(i: int) -> None:
        v_pix = project(verts, rel["camrot"][i:i + 1], rel["campos"][i:i + 1], cam.focal_tensor(1, device),
                        cam.princpt_tensor(1, device))
        raster.render(v_pix, tex, size, size, antialiased=antialiased)

    one(0)  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for i in range(frames):
        one(i)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return frames / (time.perf_counter() - start)


def time_avatar(topo: Topology, size: int, frames: int, device: torch.device) -> float:
    torch.manual_seed(0)
    spec = dataclasses.replace(RELEASE_SPEC, num_vertices=topo.num_vertices)  # 7306 with the release mesh
    decoder = CodecFaceDecoder(spec)
    with torch.no_grad():
        for p in decoder.parameters():
            p.normal_(0, 0.02)
    avatar = CodecAvatar(spec, decoder.state_dict(), topo, topo.v, 1.0, device=device)
    cam = release_camera(size)
    codes = torch.randn(frames, 256) * 0.1
    hp = poses(frames)
    avatar.render(codes[:1], hp[:1], camera=cam)  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for i in range(frames):
        avatar.render(codes[i:i + 1], hp[i:i + 1], camera=cam)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return frames / (time.perf_counter() - start)


def demo_params(frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Smoothly varying demo-avatar parameters and head poses (T, 9), (T, 7)."""
    from avflow_cli.render import demo_avatar as da

    t = np.arange(frames)[:, None] / 30.0
    phase = np.arange(da.NUM_PARAMS)[None, :]
    lo, hi = da.FACE_PARAM_RANGES[:, 0], da.FACE_PARAM_RANGES[:, 1]
    params = lo + (hi - lo) * (0.5 + 0.5 * np.sin(2 * np.pi * (0.3 + 0.1 * phase) * t + phase))
    q = da.euler_to_quat(0.1 * np.sin(t[:, 0]), 0.2 * np.sin(0.7 * t[:, 0]), 0.05 * np.sin(0.3 * t[:, 0]))
    pose = np.concatenate([q, np.tile([0.0, 0.0, 1000.0], (frames, 1))], axis=1)
    return params.astype(np.float32), pose


def time_demo(size: int, frames: int) -> float:
    from avflow_cli.render.demo_avatar import render_frames

    params, pose = demo_params(frames)
    next(render_frames(params[:1], pose[:1], size, palette="participant"))  # warm-up: imports, head samples
    start = time.process_time()
    for _ in render_frames(params, pose, size, palette="participant"):
        pass
    return frames / (time.process_time() - start)


def demo_video_cpu_seconds_per_minute(size: int = 192, frames: int = 600) -> float:
    """CPU seconds (this process + ffmpeg) to draw and encode one minute (1800 frames) of video."""
    import resource
    import tempfile

    from avflow_cli.render.demo_avatar import render_video

    params, pose = demo_params(frames)

    def cpu() -> float:
        me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime

    with tempfile.TemporaryDirectory() as tmp:
        start = cpu()
        render_video(Path(tmp) / "p.mp4", params, pose, 30.0, size=size, palette="participant")
        return (cpu() - start) * 1800 / frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 1024])
    parser.add_argument("--frames", type=int, default=12)
    parser.add_argument("--obj", type=Path, default=None, help="the release's face_topo_small_neck.obj, if you have it")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--no-avatar", action="store_true", help="skip the full decoder rows (slow on CPU)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    topo = read_obj(args.obj) if args.obj else ellipsoid_head()
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    mesh = f"{'release mesh' if args.obj else 'ellipsoid head'}: {topo.num_vertices} vertices, {len(topo.vi)} triangles"
    table = Table(title=f"avflow render speed ({mesh}; {args.threads} CPU threads)")
    for column in ("device", "stage", "size", "frames/s", "ms/frame", "× raster 1024"):
        table.add_column(column, justify="right")
    for device in devices:
        rows = []
        for size in args.sizes:
            rows.append(("raster", size, time_raster(topo, size, args.frames, device, True)))
            rows.append(("raster, no AA", size, time_raster(topo, size, args.frames, device, False)))
        if not args.no_avatar:
            for size in args.sizes:
                rows.append(("avatar (decoder + raster)", size, time_avatar(topo, size, max(2, args.frames // 3), device)))
        ref = next((fps for stage, size, fps in rows if stage == "raster" and size == 1024), rows[0][2])
        for stage, size, fps in rows:
            table.add_row(device.type, stage, f"{size}²", f"{fps:.2f}", f"{1000 / fps:.0f}", f"{fps / ref:.2f}")
    fps192, fps512 = time_demo(192, 4 * args.frames), time_demo(512, 2 * args.frames)
    table.add_row("cpu", "demo avatar (draw)", "192²", f"{fps192:.1f}", f"{1000 / fps192:.1f}", "")
    table.add_row("cpu", "demo avatar (draw)", "512²", f"{fps512:.1f}", f"{1000 / fps512:.1f}", "")
    Console().print(table)
    per_minute = demo_video_cpu_seconds_per_minute()
    Console().print(f"demo corpus participant video (192², draw + encode, ffmpeg included): {per_minute:.2f} CPU-s per "
                    f"corpus minute (target for the whole corpus: ≤ 10 CPU-s per minute); draw at 512² is "
                    f"{fps192 / fps512:.1f}× slower than at 192²")


if __name__ == "__main__":
    main()
