"""A textured-mesh rasteriser in plain PyTorch: no compiler, CPU or GPU.

The release renders with DRTK (CUDA extensions built from source). This module does the same
job with vectorised tensor operations, one frame at a time:

1. **Coverage.** Each triangle's pixel bounding box is enumerated (triangles are grouped by
   box size rounded up to powers of two, so each group is one dense tensor); a pixel is covered
   when its centre (integer coordinates, DRTK's convention) lies inside or on the projected
   triangle. Triangles with a vertex at or behind the near plane are skipped (no clipping).
2. **Z-buffer.** Each (pixel, triangle) candidate gets the key ``(depth bits << 32) | id``;
   ``scatter_reduce(amin)`` keeps the nearest triangle per pixel (ties: lower id) — an exact,
   order-independent z-buffer.
3. **Interpolation.** Perspective-correct barycentrics of the winning triangle (DRTK's
   ``render``: screen-space weights divided by depth, renormalised) interpolate the UVs.
4. **Texture.** ``grid_sample`` (bilinear, border padding, ``align_corners=False``) with the
   OBJ's v flipped (the release's ``RenderLayer(flip_uvs=True)``).
5. **Anti-aliasing** (the release has none). Where two horizontally or vertically adjacent
   pixels differ in triangle and the front one's triangle ends between their centres at a
   *silhouette* edge (a mesh boundary, or an edge between a front- and a back-facing
   triangle), the colours are blended by how far the edge lies past the midpoint — the analytic
   method of nvdiffrast's ``antialias``. For an edge crossing the pixel row at x = c the result
   equals the exact area coverage of the two pixels.

Letters: V vertices, F triangles, Nt texture coordinates, N covered pixels, H×W image, C colours.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from avflow_cli.render.obj import Topology

__all__ = ["Fragments", "MeshRasterizer", "rasterize", "face_neighbours", "antialias"]

NEAR = 1.0  # camera-space depth (mm) below which a triangle is not drawn
INSIDE_EPS = 1e-6  # barycentric tolerance: centres on an edge count as covered
_NO_HIT = torch.iinfo(torch.int64).max


@dataclass
class Fragments:
    """Per covered pixel: flat index ``y·W + x``, triangle id, barycentrics and depth."""

    height: int
    width: int
    pixel: torch.Tensor  # (N,) int64
    face: torch.Tensor  # (N,) int64
    bary: torch.Tensor  # (N, 3) perspective-correct, sums to 1
    depth: torch.Tensor  # (N,) camera-space z

    def face_image(self) -> torch.Tensor:
        """(H, W) int64 triangle ids, −1 where nothing is drawn."""
        img = torch.full((self.height * self.width,), -1, dtype=torch.int64, device=self.pixel.device)
        img[self.pixel] = self.face
        return img.view(self.height, self.width)

    def depth_image(self) -> torch.Tensor:
        """(H, W) depth, +inf where nothing is drawn."""
        img = torch.full((self.height * self.width,), float("inf"), dtype=self.depth.dtype, device=self.pixel.device)
        img[self.pixel] = self.depth
        return img.view(self.height, self.width)


def _barycentric_planes(tri: torch.Tensor, origin: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Screen-space barycentric weights as planes in local pixel coordinates.

    tri (F, 3, 2) projected corners, origin (F, 2) integer pixel each plane is relative to.
    Returns (planes (F, 3, 3) with l_i(dx, dy) = a·dx + b·dy + c, signed doubled area (F,)).
    Computed in float64 so that the local planes are exact to float32 precision.
    """
    t = tri.double() - origin.double()[:, None, :]  # (F, 3, 2) relative to the origin
    x, y = t[..., 0], t[..., 1]  # (F, 3)
    area = (x[:, 1] - x[:, 0]) * (y[:, 2] - y[:, 0]) - (x[:, 2] - x[:, 0]) * (y[:, 1] - y[:, 0])  # (F,)
    safe = torch.where(area == 0, torch.ones_like(area), area)
    planes = []
    for i in range(3):
        j, k = (i + 1) % 3, (i + 2) % 3  # l_i is the edge function of the edge (j, k) over the area
        a = (y[:, j] - y[:, k]) / safe
        b = (x[:, k] - x[:, j]) / safe
        c = (x[:, j] * y[:, k] - x[:, k] * y[:, j]) / safe
        planes.append(torch.stack([a, b, c], dim=-1))
    return torch.stack(planes, dim=1).to(tri.dtype), area.to(tri.dtype)  # (F, 3, 3), (F,)


def _eval(planes: torch.Tensor, dx: torch.Tensor, dy: torch.Tensor) -> torch.Tensor:
    """planes (N, 3, 3), local coords (N,) → barycentrics (N, 3)."""
    return planes[..., 0] * dx[:, None] + planes[..., 1] * dy[:, None] + planes[..., 2]


def _next_pow2_log(n: torch.Tensor) -> torch.Tensor:
    """ceil(log2(n)) for positive integers n."""
    out = torch.zeros_like(n)
    m = n - 1
    while bool((m > 0).any()):
        out += (m > 0).long()
        m = m >> 1
    return out


def rasterize(v_pix: torch.Tensor, vi: torch.Tensor, height: int, width: int, *, near: float = NEAR) -> Fragments:
    """Z-buffered coverage of one frame.

    v_pix (V, 3): pixel x, y and camera-space depth z; vi (F, 3) int64 → :class:`Fragments`.
    """
    device = v_pix.device
    tri = v_pix[vi]  # (F, 3, 3)
    xy, z = tri[..., :2], tri[..., 2]  # (F, 3, 2), (F, 3)
    lo = torch.ceil(xy.amin(dim=1) - INSIDE_EPS)  # (F, 2) first pixel centre that may be inside
    hi = torch.floor(xy.amax(dim=1) + INSIDE_EPS)  # (F, 2)
    lo[:, 0].clamp_(min=0)
    lo[:, 1].clamp_(min=0)
    hi[:, 0].clamp_(max=width - 1)
    hi[:, 1].clamp_(max=height - 1)
    planes, area = _barycentric_planes(xy, lo)
    ok = (z > near).all(dim=1) & (area != 0) & (hi >= lo).all(dim=1) & torch.isfinite(xy).all(dim=(1, 2))
    faces = ok.nonzero()[:, 0]  # (Fv,)
    empty = Fragments(height, width, torch.zeros(0, dtype=torch.int64, device=device),
                      torch.zeros(0, dtype=torch.int64, device=device),
                      torch.zeros(0, 3, dtype=v_pix.dtype, device=device), torch.zeros(0, dtype=v_pix.dtype, device=device))
    if faces.numel() == 0:
        return empty
    lo_i, hi_i = lo[faces].long(), hi[faces].long()  # (Fv, 2)
    size = hi_i - lo_i + 1  # (Fv, 2)
    logs = _next_pow2_log(size)  # (Fv, 2)
    group = logs[:, 0] * 64 + logs[:, 1]
    inv_z = 1.0 / z  # (F, 3)
    base = lo_i[:, 1] * width + lo_i[:, 0]  # (Fv,) flat pixel of each box's corner
    keys, pixels = [], []
    for g in torch.unique(group).tolist():
        sel = (group == g).nonzero()[:, 0]
        lw, lh = g // 64, g % 64
        kw, kh = 1 << lw, 1 << lh
        f = faces[sel]  # (n,)
        pl = planes[f]  # (n, 3, 3)
        dx = torch.arange(kw, device=device, dtype=v_pix.dtype)[None, None, :]  # (1, 1, kw)
        dy = torch.arange(kh, device=device, dtype=v_pix.dtype)[None, :, None]  # (1, kh, 1)
        iz = inv_z[f]  # (n, 3)
        inside = (dx < size[sel, 0, None, None]) & (dy < size[sel, 1, None, None])  # (n, kh, kw) in the box
        zinv = torch.zeros(1, device=device, dtype=v_pix.dtype)
        for i in range(3):  # barycentric weight i over the whole box, one plane at a time
            lam = pl[:, i, 0, None, None] * dx + pl[:, i, 1, None, None] * dy + pl[:, i, 2, None, None]  # (n, kh, kw)
            inside &= lam >= -INSIDE_EPS
            zinv = zinv + lam * iz[:, i, None, None]
        k = inside.view(-1).nonzero()[:, 0]  # (M,) flat (face, row, column) of covered candidates
        n_i, y_i, x_i = k >> (lw + lh), (k >> lw) & (kh - 1), k & (kw - 1)
        depth = 1.0 / zinv.view(-1)[k]  # (M,) perspective-correct depth
        bits = depth.float().clamp(min=0).view(torch.int32).long()  # order-preserving for positive floats
        keys.append((bits << 32) | f[n_i])
        pixels.append(base[sel][n_i] + y_i * width + x_i)
    key = torch.cat(keys)
    pix = torch.cat(pixels)
    if key.numel() == 0:
        return empty
    zbuf = torch.full((height * width,), _NO_HIT, dtype=torch.int64, device=device)
    zbuf.scatter_reduce_(0, pix, key, reduce="amin")
    covered = (zbuf != _NO_HIT).nonzero()[:, 0]  # (N,)
    face = zbuf[covered] & 0xFFFFFFFF  # (N,)
    px, py = covered % width, covered // width
    lam = _eval(planes[face], (px - lo[face, 0].long()).to(v_pix.dtype), (py - lo[face, 1].long()).to(v_pix.dtype))
    lam = lam.clamp(min=0)
    lam = lam / lam.sum(dim=1, keepdim=True)
    w = lam * inv_z[face]  # (N, 3)
    zinv = w.sum(dim=1)
    return Fragments(height, width, covered, face, w / zinv[:, None], 1.0 / zinv)


def face_neighbours(vi: torch.Tensor) -> torch.Tensor:
    """The triangle across each edge: (F, 3) int64, column i = the edge opposite corner i;
    −1 on mesh boundaries and on edges shared by more than two triangles."""
    tri = vi.cpu().numpy()
    n = len(tri)
    a = np.concatenate([tri[:, 1], tri[:, 2], tri[:, 0]])  # edge opposite corner 0, 1, 2
    b = np.concatenate([tri[:, 2], tri[:, 0], tri[:, 1]])
    owner = np.tile(np.arange(n), 3)
    slot = np.repeat(np.arange(3), n)
    lo_, hi_ = np.minimum(a, b), np.maximum(a, b)
    key = lo_.astype(np.int64) * (int(tri.max()) + 1) + hi_
    order = np.argsort(key, kind="stable")
    key_s = key[order]
    out = np.full((n, 3), -1, dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, key_s[1:] != key_s[:-1]])
    counts = np.diff(np.r_[starts, len(key_s)])
    pairs = starts[counts == 2]
    e0, e1 = order[pairs], order[pairs + 1]
    out[owner[e0], slot[e0]] = owner[e1]
    out[owner[e1], slot[e1]] = owner[e0]
    return torch.from_numpy(out).to(vi.device)


def antialias(
    image: torch.Tensor, frags: Fragments, v_pix: torch.Tensor, vi: torch.Tensor, neighbours: torch.Tensor
) -> torch.Tensor:
    """Blend colours across silhouette edges (module doc, step 5). image (C, H, W) → (C, H, W)."""
    C, H, W = image.shape
    face_img = frags.face_image()  # (H, W)
    depth_img = frags.depth_image()  # (H, W)
    xy = v_pix[vi][..., :2]  # (F, 3, 2)
    area = ((xy[:, 1, 0] - xy[:, 0, 0]) * (xy[:, 2, 1] - xy[:, 0, 1])
            - (xy[:, 2, 0] - xy[:, 0, 0]) * (xy[:, 1, 1] - xy[:, 0, 1]))  # (F,)
    facing = torch.sign(area)
    nb = neighbours
    nb_facing = torch.where(nb >= 0, facing[nb.clamp(min=0)], torch.zeros_like(facing[nb.clamp(min=0)]))
    silhouette = (nb < 0) | (nb_facing != facing[:, None])  # (F, 3)
    flat = image.reshape(C, H * W)
    face_flat, depth_flat = face_img.reshape(-1), depth_img.reshape(-1)
    delta = torch.zeros_like(flat)
    for step, (fa, fb) in ((1, (face_img[:, :-1], face_img[:, 1:])), (W, (face_img[:-1, :], face_img[1:, :]))):
        rows, cols = (fa != fb).nonzero(as_tuple=True)
        pa = rows * W + cols  # flat index of the left / upper pixel of each differing pair
        pb = pa + step
        for p, q in ((pa, pb), (pb, pa)):
            f, g = face_flat[p], face_flat[q]
            keep = (f >= 0) & ((g < 0) | (depth_flat[p] < depth_flat[q]))
            p, q, f, g = p[keep], q[keep], f[keep], g[keep]
            # pixels of two triangles sharing a non-silhouette edge: the surface continues, nothing to blend
            shared = ((nb[f] == g[:, None]) & ~silhouette[f]).any(dim=1)
            p, q, f = p[~shared], q[~shared], f[~shared]
            if p.numel() == 0:
                continue
            origin = torch.stack([p % W, p // W], dim=1)  # (n, 2)
            planes, _ = _barycentric_planes(xy[f], origin)
            lp = planes[..., 2]  # (n, 3) at p (local origin)
            qd = torch.stack([q % W - p % W, q // W - p // W], dim=1).to(planes.dtype)  # (n, 2) unit step
            lq = planes[..., 0] * qd[:, :1] + planes[..., 1] * qd[:, 1:] + planes[..., 2]
            out = lq < 0
            t = torch.where(out, lp / (lp - lq).clamp(min=1e-12), torch.full_like(lp, 2.0))
            t_min, edge = t.min(dim=1)
            sil = silhouette[f, edge] & (t_min <= 1.0)
            p, q, t_min = p[sil], q[sil], t_min[sil].clamp(0.0, 1.0).to(image.dtype)
            cp, cq = flat[:, p], flat[:, q]
            near_p = t_min < 0.5  # the edge is inside p's pixel: p is partly background
            w_p = torch.where(near_p, 0.5 - t_min, torch.zeros_like(t_min))
            w_q = torch.where(near_p, torch.zeros_like(t_min), t_min - 0.5)
            delta.index_add_(1, p, (cq - cp) * w_p)
            delta.index_add_(1, q, (cp - cq) * w_q)
    return (flat + delta).view(C, H, W)


class MeshRasterizer:
    """Renders textured frames of one mesh topology on one device (buffers kept there)."""

    def __init__(self, topology: Topology, device: torch.device | str = "cpu") -> None:
        self.device = torch.device(device)
        self.num_vertices = topology.num_vertices
        self.vi = torch.as_tensor(topology.vi, dtype=torch.int64, device=self.device)  # (F, 3)
        self.vti = torch.as_tensor(topology.vti, dtype=torch.int64, device=self.device)  # (F, 3)
        vt = torch.as_tensor(topology.vt, dtype=torch.float32, device=self.device).clone()  # (Nt, 2)
        vt[:, 1] = 1.0 - vt[:, 1]  # the OBJ's v points up; image rows go down (RenderLayer flip_uvs)
        self.grid_vt = 2.0 * vt - 1.0  # grid_sample coordinates
        self.neighbours = face_neighbours(self.vi)

    def shade(self, frags: Fragments, tex: torch.Tensor, background: torch.Tensor) -> torch.Tensor:
        """Texture-map covered pixels. tex (C, Ht, Wt), background (C,) → (C, H, W)."""
        C = tex.shape[0]
        img = background.to(tex.dtype)[:, None].expand(C, frags.height * frags.width).clone()  # (C, H·W)
        if frags.pixel.numel():
            uv = (frags.bary[:, :, None] * self.grid_vt[self.vti[frags.face]]).sum(dim=1)  # (N, 2)
            col = F.grid_sample(tex[None], uv[None, None].to(tex.dtype), mode="bilinear", padding_mode="border",
                                align_corners=False)  # (1, C, 1, N)
            img[:, frags.pixel] = col[0, :, 0]
        return img.view(C, frags.height, frags.width)

    def render(
        self,
        v_pix: torch.Tensor,
        tex: torch.Tensor,
        height: int,
        width: int,
        *,
        background: torch.Tensor | None = None,
        antialiased: bool = True,
    ) -> torch.Tensor:
        """Frames of projected vertices. v_pix (B, V, 3), tex (B, C, Ht, Wt) → (B, C, H, W)."""
        if v_pix.shape[1] != self.num_vertices:
            raise ValueError(f"the mesh has {self.num_vertices} vertices, got {v_pix.shape[1]}")
        C = tex.shape[1]
        bg = torch.zeros(C, device=tex.device, dtype=tex.dtype) if background is None else background.to(tex.device, tex.dtype)
        out = []
        for b in range(v_pix.shape[0]):
            frags = rasterize(v_pix[b], self.vi, height, width)
            img = self.shade(frags, tex[b], bg)
            if antialiased:
                img = antialias(img, frags, v_pix[b], self.vi, self.neighbours)
            out.append(img)
        return torch.stack(out)
