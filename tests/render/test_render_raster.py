"""The PyTorch rasteriser against answers known without a renderer: coverage, depth order,
texture lookup, intrinsics, anti-aliasing, and an independent point projection / ray cast."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from avflow_cli.render.camera import Camera, head_relative, project, release_camera
from avflow_cli.render.obj import Topology
from avflow_cli.render.raster import MeshRasterizer, face_neighbours, rasterize


# --- helpers ------------------------------------------------------------------------------------
def _pose(rot: np.ndarray, trans: tuple[float, float, float]) -> torch.Tensor:
    """[R | t] head → camera as a (1, 3, 4) tensor."""
    return torch.tensor(np.concatenate([rot, np.asarray(trans, float)[:, None]], axis=1), dtype=torch.float32)[None]


def _rot_y(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def _rot_x(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def _project(verts: np.ndarray, pose: torch.Tensor, cam: Camera) -> torch.Tensor:
    rel = head_relative(pose)
    v = torch.as_tensor(verts, dtype=torch.float32)[None]
    return project(v, rel["camrot"], rel["campos"], cam.focal_tensor(1), cam.princpt_tensor(1))  # (1, V, 3)


def _independent_projection(verts: np.ndarray, rot: np.ndarray, trans, cam: Camera) -> np.ndarray:
    """Plain pinhole K[R|t] in float64, written separately from the renderer."""
    k = np.array([[cam.focal[0][0], cam.focal[0][1], cam.princpt[0]], [0, cam.focal[1][1], cam.princpt[1]], [0, 0, 1]])
    cam_pts = verts @ rot.T + np.asarray(trans, float)  # (V, 3)
    hom = cam_pts @ k.T
    return hom[:, :2] / hom[:, 2:]  # (V, 2) pixels


def _square(x0: float, x1: float, y0: float, y1: float, z: float = 0.0, uv=((0.1, 0.1), (0.9, 0.9))) -> Topology:
    v = np.array([[x0, y0, z], [x1, y0, z], [x1, y1, z], [x0, y1, z]], np.float32)
    (u0, w0), (u1, w1) = uv
    vt = np.array([[u0, w0], [u1, w0], [u1, w1], [u0, w1]], np.float32)
    f = np.array([[0, 1, 2], [0, 2, 3]])
    return Topology(v, vt, f, f.copy())


def _ramp_texture(h: int = 64, w: int = 80) -> torch.Tensor:
    """Channel 0 = texel column, 1 = texel row, 2 = 100: bilinear lookup returns the coordinate."""
    cols = torch.arange(w, dtype=torch.float32)[None, :].expand(h, w)
    rows = torch.arange(h, dtype=torch.float32)[:, None].expand(h, w)
    return torch.stack([cols, rows, torch.full((h, w), 100.0)])


SIMPLE = Camera(((1000.0, 0.0), (0.0, 2000.0)), (20.0, 16.0), 40, 40)  # fx ≠ fy on purpose


# --- intrinsics -----------------------------------------------------------------------------------
def test_projection_equals_an_independent_pinhole() -> None:
    rng = np.random.default_rng(0)
    verts = rng.uniform(-80, 80, size=(50, 3))
    rot = _rot_y(0.3) @ _rot_x(-0.2) @ np.diag([1.0, -1.0, -1.0])
    trans = (12.0, -30.0, 950.0)
    for cam in (release_camera(1024), release_camera(512), SIMPLE):
        ours = _project(verts, _pose(rot, trans), cam)[0].double().numpy()
        ref = _independent_projection(verts, rot, trans, cam)
        np.testing.assert_allclose(ours[:, :2], ref, atol=2e-3)
        np.testing.assert_allclose(ours[:, 2], (verts @ rot.T + trans)[:, 2], atol=1e-3)


def test_release_camera_scales_the_4096_pixel_intrinsics() -> None:
    cam = release_camera(1024)
    assert cam.focal == ((10085.45 / 4, 0.0), (0.0, 10082.49 / 4)) and cam.princpt == (512.0, 426.9)
    assert release_camera(512).princpt == (256.0, 213.45)


# --- coverage -------------------------------------------------------------------------------------
def test_square_covers_exactly_the_pixel_centres_inside() -> None:
    # x_pix = X + 20, y_pix = 2Y + 16 at depth 1000: edges at x 9.75 / 29.75, y 10.4 / 23.3
    topo = _square(-10.25, 9.75, -2.8, 3.65)
    v_pix = _project(topo.v, _pose(np.eye(3), (0, 0, 1000.0)), SIMPLE)[0]
    frags = rasterize(v_pix, torch.as_tensor(topo.vi), 40, 40)
    mask = (frags.face_image() >= 0).numpy()
    expected = np.zeros((40, 40), bool)
    expected[11:24, 10:30] = True  # rows 11..23, columns 10..29
    np.testing.assert_array_equal(mask, expected)
    np.testing.assert_allclose(frags.depth.numpy(), 1000.0, rtol=1e-6)
    np.testing.assert_allclose(frags.bary.sum(dim=1).numpy(), 1.0, atol=1e-6)


def test_texture_lookup_follows_the_uvs_on_a_frontal_square() -> None:
    topo = _square(-10.25, 9.75, -2.8, 3.65)
    v_pix = _project(topo.v, _pose(np.eye(3), (0, 0, 1000.0)), SIMPLE)
    tex = _ramp_texture()
    img = MeshRasterizer(topo).render(v_pix, tex[None], 40, 40, antialiased=False)[0]  # (3, H, W)
    ys, xs = np.mgrid[11:24, 10:30]
    u = 0.1 + 0.8 * (xs - 9.75) / 20.0  # affine on a fronto-parallel square
    v = 0.1 + 0.8 * (ys - 10.4) / 12.9  # OBJ v grows with head y, which is image-down here
    col = u * 80 - 0.5  # grid_sample, align_corners=False
    row = (1.0 - v) * 64 - 0.5  # the release flips v
    np.testing.assert_allclose(img[0, 11:24, 10:30].numpy(), col, atol=2e-3)
    np.testing.assert_allclose(img[1, 11:24, 10:30].numpy(), row, atol=2e-3)
    np.testing.assert_allclose(img[2, 11:24, 10:30].numpy(), 100.0, atol=1e-3)
    assert (img[:, :11] == 0).all() and (img[:, :, :10] == 0).all()


def test_perspective_correct_uvs_on_a_tilted_square() -> None:
    """Each pixel's UV equals the ray/plane intersection, computed without the renderer."""
    cam = release_camera(256)
    x0, x1, y0, y1 = -60.0, 60.0, -45.0, 45.0
    topo = _square(x0, x1, y0, y1, uv=((0.1, 0.1), (0.9, 0.9)))
    rot = np.diag([1.0, -1.0, -1.0]) @ _rot_y(0.9)
    trans = (0.0, -80.0, 900.0)
    v_pix = _project(topo.v, _pose(rot, trans), cam)
    img = MeshRasterizer(topo).render(v_pix, _ramp_texture(128, 128)[None], 256, 256, antialiased=False)[0]
    frags = rasterize(v_pix[0], torch.as_tensor(topo.vi), 256, 256)
    pix = frags.pixel.numpy()
    px, py = pix % 256, pix // 256
    fx, fy, (cx, cy) = cam.focal[0][0], cam.focal[1][1], cam.princpt
    d_cam = np.stack([(px - cx) / fx, (py - cy) / fy, np.ones_like(px, float)], 1)  # (N, 3)
    origin = -rot.T @ np.asarray(trans)  # camera centre in head coordinates
    d = d_cam @ rot  # rotate directions into head coordinates (Rᵀ d)
    s = -origin[2] / d[:, 2]
    hit = origin + s[:, None] * d  # (N, 3) on the plane z = 0
    u = 0.1 + 0.8 * (hit[:, 0] - x0) / (x1 - x0)
    v = 0.1 + 0.8 * (hit[:, 1] - y0) / (y1 - y0)
    assert len(pix) > 2000
    np.testing.assert_allclose(img[0].reshape(-1)[pix].numpy(), u * 128 - 0.5, atol=0.02)
    np.testing.assert_allclose(img[1].reshape(-1)[pix].numpy(), (1 - v) * 128 - 0.5, atol=0.02)


def test_nearer_square_wins_whatever_the_triangle_order() -> None:
    near = _square(-10.25, 9.75, -2.8, 3.65, z=0.0)
    far = _square(-5.25, 14.75, -5.3, 1.15, z=100.0)
    for first, second in ((far, near), (near, far)):
        v = np.concatenate([first.v, second.v])
        vi = np.concatenate([first.vi, second.vi + 4])
        v_pix = _project(v, _pose(np.eye(3), (0, 0, 1000.0)), SIMPLE)[0]
        frags = rasterize(v_pix, torch.as_tensor(vi), 40, 40)
        faces = frags.face_image().numpy()
        depth = frags.depth_image().numpy()
        near_ids = (0, 1) if first is near else (2, 3)
        near_mask = np.zeros((40, 40), bool)
        near_mask[11:24, 10:30] = True
        assert np.isin(faces[near_mask], near_ids).all()
        np.testing.assert_allclose(depth[near_mask], 1000.0, rtol=1e-6)
        far_only = (faces >= 0) & ~near_mask
        assert far_only.any() and np.allclose(depth[far_only], 1100.0, rtol=1e-6)


def test_triangles_reaching_behind_the_camera_are_not_drawn() -> None:
    topo = _square(-10.25, 9.75, -2.8, 3.65)
    v = topo.v.copy()
    v[0, 2] = -1500.0  # one corner behind the camera: its two triangles both use vertex 0
    v_pix = _project(v, _pose(np.eye(3), (0, 0, 1000.0)), SIMPLE)[0]
    frags = rasterize(v_pix, torch.as_tensor(topo.vi), 40, 40)
    assert frags.pixel.numel() == 0


# --- a cube and a sphere against independent geometry ------------------------------------------------
def _cube(side: float = 100.0) -> tuple[Topology, np.ndarray]:
    """Cube with one UV strip per face (6 colours); returns topology and each triangle's face id."""
    h = side / 2
    corners = np.array([[x, y, z] for x in (-h, h) for y in (-h, h) for z in (-h, h)], np.float32)
    quads = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    vi, vti, vt, owner = [], [], [], []
    for k, (a, b, c, d) in enumerate(quads):
        base = len(vt)
        u0 = (k + 0.25) / 6
        vt += [(u0, 0.25), (u0 + 0.5 / 6, 0.25), (u0 + 0.5 / 6, 0.75), (u0, 0.75)]
        vi += [(a, b, c), (a, c, d)]
        vti += [(base, base + 1, base + 2), (base, base + 2, base + 3)]
        owner += [k, k]
    return Topology(corners, np.array(vt, np.float32), np.array(vi), np.array(vti)), np.array(owner)


def _face_texture() -> torch.Tensor:
    """6 vertical bands, band k filled with value 10·(k + 1) in every channel."""
    tex = torch.zeros(3, 8, 48)
    for k in range(6):
        tex[:, :, k * 8:(k + 1) * 8] = 10.0 * (k + 1)
    return tex


CUBE_ROT = np.diag([1.0, -1.0, -1.0]) @ _rot_y(0.6) @ _rot_x(0.45)
CUBE_T = (15.0, 25.0, 700.0)
FACE_AXES = [(0, -1), (0, 1), (1, -1), (1, 1), (2, -1), (2, 1)]  # (axis, sign) of each quad's outward normal


def _raycast_cube(px: np.ndarray, py: np.ndarray, cam: Camera, half: float = 50.0) -> np.ndarray:
    """Slab-method ray cast in head coordinates: the entered face (0..5) per pixel, −1 = miss."""
    fx, fy, (cx, cy) = cam.focal[0][0], cam.focal[1][1], cam.princpt
    d = np.stack([(px - cx) / fx, (py - cy) / fy, np.ones_like(px, float)], -1) @ CUBE_ROT  # (N, 3)
    o = -CUBE_ROT.T @ np.asarray(CUBE_T)
    with np.errstate(divide="ignore", invalid="ignore"):
        t1 = (-half - o) / d
        t2 = (half - o) / d
    tmin = np.minimum(t1, t2)
    t_enter = tmin.max(axis=1)
    t_exit = np.maximum(t1, t2).min(axis=1)
    axis = tmin.argmax(axis=1)
    sign = np.where(d[np.arange(len(d)), axis] > 0, -1, 1)  # entering through the face facing the ray
    out = np.full(len(d), -1)
    hit = t_enter < t_exit
    for k, (ax, sg) in enumerate(FACE_AXES):
        out[hit & (axis == ax) & (sign == sg)] = k
    return out


def test_cube_matches_an_independent_ray_cast() -> None:
    """Coverage, silhouette, depth order and texture per pixel, against a ray cast of the cube."""
    size = 160
    cam = release_camera(size)
    topo, owner = _cube()
    v_pix = _project(topo.v, _pose(CUBE_ROT, CUBE_T), cam)
    img = MeshRasterizer(topo).render(v_pix, _face_texture()[None], size, size, antialiased=False)[0, 0].numpy()
    ys, xs = np.mgrid[0:size, 0:size]
    truth = _raycast_cube(xs.ravel().astype(float), ys.ravel().astype(float), cam).reshape(size, size)
    # pixels whose answer changes within ±0.01 px are on an edge: either answer is right there
    stable = np.ones_like(truth, bool)
    for dx, dy in ((0.01, 0), (-0.01, 0), (0, 0.01), (0, -0.01)):
        moved = _raycast_cube(xs.ravel() + dx, ys.ravel() + dy, cam).reshape(size, size)
        stable &= moved == truth
    expected = np.where(truth >= 0, 10.0 * (truth + 1), 0.0)
    assert stable.mean() > 0.97 and (truth >= 0).sum() > 2000
    assert len(np.unique(truth[truth >= 0])) == 3  # three faces visible at this pose
    np.testing.assert_allclose(img[stable], expected[stable], atol=1e-4)


def _icosphere(radius: float, levels: int) -> Topology:
    t = (1 + 5**0.5) / 2
    v = [(-1, t, 0), (1, t, 0), (-1, -t, 0), (1, -t, 0), (0, -1, t), (0, 1, t), (0, -1, -t), (0, 1, -t),
         (t, 0, -1), (t, 0, 1), (-t, 0, -1), (-t, 0, 1)]
    f = [(0, 11, 5), (0, 5, 1), (0, 1, 7), (0, 7, 10), (0, 10, 11), (1, 5, 9), (5, 11, 4), (11, 10, 2), (10, 7, 6),
         (7, 1, 8), (3, 9, 4), (3, 4, 2), (3, 2, 6), (3, 6, 8), (3, 8, 9), (4, 9, 5), (2, 4, 11), (6, 2, 10),
         (8, 6, 7), (9, 8, 1)]
    verts = [np.array(p, float) / np.linalg.norm(p) for p in v]
    for _ in range(levels):
        cache: dict[tuple[int, int], int] = {}

        def mid(a: int, b: int) -> int:
            key = (min(a, b), max(a, b))
            if key not in cache:
                m = verts[a] + verts[b]
                verts.append(m / np.linalg.norm(m))
                cache[key] = len(verts) - 1
            return cache[key]

        f = [tri for a, b, c in f for tri in ((a, mid(a, b), mid(a, c)), (b, mid(b, c), mid(a, b)),
                                               (c, mid(a, c), mid(b, c)), (mid(a, b), mid(b, c), mid(a, c)))]
    vv = np.array(verts, np.float32) * radius
    vt = (vv[:, :2] / radius * 0.4 + 0.5).astype(np.float32)
    fi = np.array(f)
    return Topology(vv, vt, fi, fi.copy())


@pytest.mark.parametrize("mesh", ["cube", "sphere"])
def test_silhouette_is_the_hull_of_independently_projected_vertices(mesh: str) -> None:
    """A convex mesh's silhouette is the convex hull of its vertices' projections."""
    size = 200
    cam = release_camera(size)
    topo = _cube()[0] if mesh == "cube" else _icosphere(70.0, 2)
    pts = _independent_projection(topo.v.astype(float), CUBE_ROT, CUBE_T, cam).astype(np.float32)
    hull = cv2.convexHull(pts)
    v_pix = _project(topo.v, _pose(CUBE_ROT, CUBE_T), cam)[0]
    mask = (rasterize(v_pix, torch.as_tensor(topo.vi), size, size).face_image() >= 0).numpy()
    dist = np.array([[cv2.pointPolygonTest(hull, (float(x), float(y)), True) for x in range(size)] for y in range(size)])
    clear = np.abs(dist) > 1e-3
    np.testing.assert_array_equal(mask[clear], dist[clear] > 0)
    assert mask.sum() > 3000
    xs_cov = np.flatnonzero(mask.any(axis=0))
    assert xs_cov[0] == int(np.ceil(pts[:, 0].min())) and xs_cov[-1] == int(np.floor(pts[:, 0].max()))


# --- anti-aliasing --------------------------------------------------------------------------------
def _flat_square_image(x0: float, x1: float, antialiased: bool = True) -> np.ndarray:
    """A white square from x0 to x1 (pixels) and y 10.4..23.3 on black, SIMPLE camera."""
    topo = _square(x0 - 20.0, x1 - 20.0, -2.8, 3.65)
    v_pix = _project(topo.v, _pose(np.eye(3), (0, 0, 1000.0)), SIMPLE)
    tex = torch.full((1, 3, 4, 4), 255.0)
    return MeshRasterizer(topo).render(v_pix, tex, 40, 40, antialiased=antialiased)[0, 0].numpy()


def test_edge_antialiasing_equals_pixel_area_coverage() -> None:
    rows = slice(13, 22)  # away from the corners
    img = _flat_square_image(9.7, 20.3)  # pixel 10 is 80 % covered, pixel 20 too
    np.testing.assert_allclose(img[rows, 10], 0.8 * 255, atol=1e-3)
    np.testing.assert_allclose(img[rows, 20], 0.8 * 255, atol=1e-3)
    np.testing.assert_allclose(img[rows, 11:20], 255.0, atol=1e-3)
    assert (img[rows, 9] == 0).all() and (img[rows, 21] == 0).all()
    img = _flat_square_image(10.3, 20.7)  # pixel 10 is 20 % covered (centre outside), 21 too
    np.testing.assert_allclose(img[rows, 10], 0.2 * 255, atol=1e-3)
    np.testing.assert_allclose(img[rows, 21], 0.2 * 255, atol=1e-3)
    np.testing.assert_allclose(img[rows, 11:21], 255.0, atol=1e-3)
    # the same edge drawn hard: coverage only
    hard = _flat_square_image(10.3, 20.7, antialiased=False)
    assert (hard[rows, 10] == 0).all() and (hard[rows, 21] == 0).all()
    np.testing.assert_allclose(hard[rows, 11:21], 255.0, atol=1e-3)


def test_antialiasing_blends_occlusion_edges_but_not_interior_edges() -> None:
    """Only silhouette pixels change; the diagonal shared by a square's two triangles stays sharp."""
    near = _square(-10.25, 9.75, -2.8, 3.65, z=0.0)
    far = _square(-15.25, 14.75, -5.3, 5.15, z=100.0, uv=((0.1, 0.1), (0.2, 0.2)))
    v = np.concatenate([near.v, far.v])
    vt = np.concatenate([near.vt, far.vt])
    vi = np.concatenate([near.vi, far.vi + 4])
    topo = Topology(v, vt, vi, vi.copy())
    v_pix = _project(v, _pose(np.eye(3), (0, 0, 1000.0)), SIMPLE)
    tex = _ramp_texture()[None]
    soft = MeshRasterizer(topo).render(v_pix, tex, 40, 40)[0].numpy()
    hard = MeshRasterizer(topo).render(v_pix, tex, 40, 40, antialiased=False)[0].numpy()
    changed = np.abs(soft - hard).max(axis=0) > 1e-4
    near_mask = np.zeros((40, 40), bool)
    near_mask[11:24, 10:30] = True
    inner = np.zeros_like(near_mask)
    inner[12:23, 11:29] = True  # the near square without its border pixels
    assert not changed[inner].any()  # its triangles' shared diagonal is not a silhouette
    assert changed[near_mask & ~inner].any()  # its outline over the far square is blended
    # the far square's own outline against the background is blended too
    far_edge = (frags := rasterize(v_pix[0], torch.as_tensor(vi), 40, 40)).face_image().numpy() >= 2
    assert changed[far_edge & ~near_mask].any() and frags.pixel.numel() > 0


def test_face_neighbours_pair_shared_edges() -> None:
    vi = torch.tensor([[0, 1, 2], [0, 2, 3], [4, 5, 6]])
    nb = face_neighbours(vi).tolist()
    # edge opposite corner 1 of triangle 0 is (2, 0), shared with triangle 1 (opposite its corner 2)
    assert nb[0] == [-1, 1, -1] and nb[1] == [-1, -1, 0] and nb[2] == [-1, -1, -1]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_gpu_render_equals_cpu_render() -> None:
    size = 160
    cam = release_camera(size)
    topo, _ = _cube()
    v_pix = _project(topo.v, _pose(CUBE_ROT, CUBE_T), cam)
    tex = _face_texture()[None]
    cpu = MeshRasterizer(topo).render(v_pix, tex, size, size)
    gpu = MeshRasterizer(topo, "cuda").render(v_pix.cuda(), tex.cuda(), size, size).cpu()
    assert (torch.abs(cpu - gpu) > 1e-2).float().mean() < 1e-3
