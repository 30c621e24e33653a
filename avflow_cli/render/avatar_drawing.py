"""Drawing the demo avatar: a shaded 2.5-D head whose features follow the face parameters.

The head is an ellipsoid (head frame: x right, y down, z away from the camera; millimetres)
cut by a tilted plane into a hair cap and a face. Each piece is a convex solid, so its image is
the convex hull of its projected surface samples, and the piece on the camera's side of the
plane is drawn last — an exact painter's order for any head pose. Lighting is fixed in the
camera frame: the part of the face whose normal faces the light is drawn lighter, so the
shading moves across the face as the head turns. Ears, neck and shoulders frame it; the
shoulders follow the head's translation but not its rotation, so nods and turns read clearly.

Features are curves in the face plane lifted onto the ellipsoid (nose tip and lips protrude),
rotated and translated with the head and projected with a pinhole camera:

- jaw: the chin and lower face drop with ``jaw_open``; the mouth opening shows teeth and tongue;
- lips: the inner gap is exactly :func:`lip_distance` and the corner distance exactly
  :func:`mouth_corner_distance` (mm in the face plane: what the lip/smile metrics measure);
  ``lip_closure`` presses the lips thin, ``lip_round`` narrows, rounds and pushes them forward;
- ``smile``: corners rise, cheeks lift and flush, nasolabial folds appear, eyes narrow;
- ``brow_raise``: brows lift and arch, the forehead creases;
- ``blink_l/r``: upper lids close over the eyes; ``gaze_x/y``: irises move, lids follow gaze.

Everything runs vectorised over frames except the OpenCV fills, so the corpus's participant
video stays cheap (see ``benchmarks``/the corpus timing in the module's tests).
Letters: T frames, K points, S surface samples.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np


FOCAL_PER_PX = 3.3  # focal length in units of image size: the head fills ~60 % of the height at 1 m
CENTRE_Y = 0.42  # principal point height (fraction of the image): room for the shoulders below
HEAD_AXES_MM = np.array([75.0, 95.0, 85.0])  # ellipsoid semi-axes (x, y, z)
SUBPIXEL_BITS = 4  # OpenCV fixed-point drawing precision: smooth motion at small sizes
HAIR_NORMAL = np.array([0.0, 1.0, -0.55]) / np.linalg.norm([0.0, 1.0, -0.55])  # hairline plane: high in front
LIGHT_CAMERA = np.array([-0.45, -0.55, -0.70]) / np.linalg.norm([-0.45, -0.55, -0.70])  # from upper left, front
SHADING = ((0.05, -0.5), (0.35, 0.0), (0.6, 0.5), (0.8, 1.0))  # (n · light above, skin → lit mix; < 0 darker)
HAIR_SCALE = np.array([1.06, 1.07, 1.06])  # the hair is a little fuller than the skull


# ---------------------------------------------------------------------------------------------
# Geometry (head frame)
# ---------------------------------------------------------------------------------------------
def surface(xy: np.ndarray, lift: np.ndarray | float = 0.0) -> np.ndarray:
    """Face-plane points onto the front of the head ellipsoid, ``lift`` mm further out (toward
    the camera). shape: (..., 2) → (..., 3)."""
    a, b, c = HEAD_AXES_MM
    inside = 1.0 - (xy[..., 0] / a) ** 2 - (xy[..., 1] / b) ** 2
    z = -c * np.sqrt(np.clip(inside, 0.05, None)) - lift
    return np.concatenate([xy, z[..., None]], axis=-1)


def _ellipse_samples(n_lat: int = 18, n_lon: int = 56) -> tuple[np.ndarray, np.ndarray]:
    """Surface samples of the head ellipsoid and their unit normals: (S, 3), (S, 3)."""
    lat = np.linspace(0.0, np.pi, n_lat)
    lon = np.linspace(0.0, 2 * np.pi, n_lon, endpoint=False)
    la, lo = np.meshgrid(lat, lon, indexing="ij")
    unit = np.stack([np.sin(la) * np.cos(lo), -np.cos(la), np.sin(la) * np.sin(lo)], -1).reshape(-1, 3)
    pts = unit * HEAD_AXES_MM
    normals = pts / HEAD_AXES_MM**2
    return pts, normals / np.linalg.norm(normals, axis=1, keepdims=True)


def _plane_ring(normal: np.ndarray, offset: float, n: int = 48) -> np.ndarray:
    """Where the plane normal·x = offset cuts the ellipsoid: (n, 3) points."""
    u = np.cross(normal, [1.0, 0.0, 0.0])
    u /= np.linalg.norm(u)
    v = np.cross(normal, u)
    ang = np.linspace(0, 2 * np.pi, n, endpoint=False)
    d = np.cos(ang)[:, None] * u + np.sin(ang)[:, None] * v  # directions in the plane (through its foot)
    foot = normal * offset
    inv_a2 = 1.0 / HEAD_AXES_MM**2
    # solve (foot + s d)ᵀ A (foot + s d) = 1 for s > 0
    qa = (d * d * inv_a2).sum(1)
    qb = 2 * (d * foot * inv_a2).sum(1)
    qc = (foot * foot * inv_a2).sum() - 1.0
    s = (-qb + np.sqrt(np.clip(qb**2 - 4 * qa * qc, 0, None))) / (2 * qa)
    return foot + s[:, None] * d


class HeadModel:
    """Fixed head-frame samples for one hairline (computed once per palette)."""

    def __init__(self, hair_offset: float) -> None:
        pts, normals = _ellipse_samples()
        side = pts @ HAIR_NORMAL  # < offset: hair
        ring = _plane_ring(HAIR_NORMAL, hair_offset)
        self.hair_offset = hair_offset
        self.hair = np.concatenate([pts[side < hair_offset] * HAIR_SCALE - [0.0, 2.0, 0.0], ring])  # (Sh, 3)
        face_pts = pts[side >= hair_offset]
        self.face = np.concatenate([face_pts, ring])  # (Sf, 3)
        self.face_normals = np.concatenate([normals[side >= hair_offset],
                                            ring / HEAD_AXES_MM**2 / np.linalg.norm(ring / HEAD_AXES_MM**2, axis=1, keepdims=True)])
        self.lower = np.flatnonzero(self.face[:, 1] > 35.0)  # samples the open jaw carries down


_HEADS: dict[float, HeadModel] = {}


def head_model(hair_offset: float) -> HeadModel:
    if hair_offset not in _HEADS:
        _HEADS[hair_offset] = HeadModel(hair_offset)
    return _HEADS[hair_offset]


def _ellipse(cx, cy, rx, ry, n: int = 16) -> np.ndarray:  # noqa: ANN001 - arrays broadcast to (T,)
    """Closed ellipse outlines per frame: (T,) ×4 → (T, n, 2)."""
    ang = np.linspace(0, 2 * np.pi, n, endpoint=False)
    cx, cy, rx, ry = (np.asarray(v, dtype=np.float64)[..., None] for v in (cx, cy, rx, ry))
    return np.stack(np.broadcast_arrays(cx + rx * np.cos(ang), cy + ry * np.sin(ang)), axis=-1)


def _bulge(s: np.ndarray, power) -> np.ndarray:  # noqa: ANN001
    """0 at the mouth corners (s = ±1), 1 in the middle. s (k,), power (T, 1) → (T, k)."""
    return (1.0 - s**2)[None, :] ** power


def face_curves(p: np.ndarray, lip_gap: np.ndarray, mouth_width: np.ndarray, index: dict[str, int]) -> dict[str, np.ndarray]:
    """Every feature as head-frame points (T, k, 3) for clipped parameters p (T, P)."""
    T = p.shape[0]
    col = {name: p[:, i].astype(np.float64) for name, i in index.items()}
    jaw, closure, rnd, smile = col["jaw_open"], col["lip_closure"], col["lip_round"], col["smile"]
    brow, gx, gy = col["brow_raise"], col["gaze_x"], col["gaze_y"]
    c: dict[str, np.ndarray] = {}
    z0 = np.zeros(T)

    # --- eyes: almond between an upper and a lower lid; the upper lid closes to the lower ------------
    s = np.linspace(-1.0, 1.0, 11)
    for side, key in ((-1.0, "l"), (1.0, "r")):
        cx, cy = 30.0 * side, -15.0
        openness = (1.0 - col[f"blink_{key}"]) * (1.0 - 0.35 * smile) * (1.0 - 0.15 * np.clip(gy, 0, 1))
        x = cx + 13.0 * s[None, :]  # (1, 11)
        lower = cy + (3.0 - 1.4 * smile)[:, None] * _bulge(s, 0.8) + 0.8 * s[None, :] * side
        upper = lower - (9.5 * openness)[:, None] * _bulge(s, 0.7) - 0.5 * (1 - openness)[:, None] * _bulge(s, 1.0)
        xs = np.broadcast_to(x, (T, 11))
        upper_xy, lower_xy = np.stack([xs, upper], -1), np.stack([xs, lower], -1)
        c[f"eye_{key}"] = surface(np.concatenate([upper_xy, lower_xy[:, ::-1]], axis=1), 0.5)
        c[f"lid_up_{key}"] = surface(np.concatenate([upper_xy, (upper_xy - [0.0, 9.0])[:, ::-1]], axis=1), 0.6)
        c[f"lid_lo_{key}"] = surface(np.concatenate([lower_xy, (lower_xy + [0.0, 6.0])[:, ::-1]], axis=1), 0.6)
        c[f"lash_{key}"] = surface(upper_xy, 0.8)
        c[f"crease_{key}"] = surface(np.stack([xs[:, 2:9], (upper - 3.0 - 1.5 * openness[:, None])[:, 2:9]], -1), 0.7)
        icx, icy = cx + 4.5 * gx, cy + 0.3 + 2.5 * gy
        c[f"iris_{key}"] = surface(_ellipse(icx, icy, 5.2, 5.2, 14), 0.55)
        c[f"pupil_{key}"] = surface(_ellipse(icx, icy, 2.4, 2.4, 10), 0.58)
        c[f"glint_{key}"] = surface(_ellipse(icx - 1.6, icy - 1.8, 0.9, 0.9, 6), 0.6)
        # brows: a tapered band; raising lifts and arches them, the inner end most
        bx = cx + side * np.linspace(-12.0, 15.0, 9)
        arch = np.sin(np.linspace(0.15, np.pi - 0.35, 9))  # (9,)
        lift = (9.0 * brow)[:, None] * (0.75 + 0.25 * (1 - np.linspace(0, 1, 9)))[None, :]
        base = -29.0 - 3.0 * arch[None, :] - lift - (1.0 * smile)[:, None]
        thick = 3.6 * (1.0 - 0.55 * np.linspace(0, 1, 9))
        bxs = np.broadcast_to(bx, (T, 9))
        c[f"brow_{key}"] = surface(np.concatenate([np.stack([bxs, base - thick], -1),
                                                   np.stack([bxs, base], -1)[:, ::-1]], axis=1), 0.8)
    # forehead creases (drawn faintly when the brows are high)
    wx = np.linspace(-22, 22, 9)
    for k, y0 in enumerate((-42.0, -47.0)):
        wy = y0 - 2.0 * np.cos(wx / 22 * np.pi / 2) - (2.0 * brow)[:, None]
        c[f"crease_fh{k}"] = surface(np.stack([np.broadcast_to(wx, (T, 9)), wy], -1), 0.3)

    # --- nose: a protruding tip, nostrils and wings -----------------------------------------------
    t = np.linspace(0, 1, 6)
    c["nose_bridge"] = np.broadcast_to(surface(np.stack([-4.5 - 1.5 * t, 2.0 + 12.0 * t], -1), 5.0 + 10.0 * t**2), (T, 6, 3))
    c["nose_tip"] = np.broadcast_to(surface(_ellipse(z0[:1], 15.5, 5.0, 4.0, 12)[0], 17.0), (T, 12, 3))
    for side, key in ((-1.0, "l"), (1.0, "r")):
        c[f"nostril_{key}"] = np.broadcast_to(surface(_ellipse(z0[:1] + 5.5 * side, 20.5, 2.8, 1.4, 10)[0], 9.0), (T, 10, 3))
        wing = np.linspace(0, np.pi, 7)
        c[f"wing_{key}"] = np.broadcast_to(
            surface(np.stack([side * (6.5 + 4.0 * np.sin(wing)), 21.5 - 6.0 * np.cos(wing) * 0.8], -1), 6.0), (T, 7, 3))

    # --- mouth: exact inner gap and corner distance; rounding protrudes, closure presses -----------
    half_w = 0.5 * mouth_width[:, None]  # (T, 1)
    gap = lip_gap[:, None]
    sm, rn, cl = smile[:, None], rnd[:, None], closure[:, None]
    s = np.linspace(-1.0, 1.0, 13)
    power = 0.75 - 0.3 * rn  # rounder opening when the lips round
    bulge = _bulge(s, power)  # (T, 13)
    centre_y, corner_y = 45.0, 45.0 - 5.0 * sm + 2.0 * rn
    x = s[None, :] * half_w
    upper_in = corner_y + (centre_y - corner_y - 0.3 * gap) * bulge
    lower_in = corner_y + (centre_y - corner_y + 0.7 * gap) * bulge
    press = 1.0 - 0.45 * cl * (gap < 1.0)  # pressed lips look thinner
    thick_u = (3.6 + 2.2 * rn) * press
    bow = 1.3 * np.exp(-((s / 0.16) ** 2))[None, :] - 0.6 * np.exp(-(((np.abs(s) - 0.3) / 0.12) ** 2))[None, :]
    upper_out = upper_in - thick_u * bulge - 0.6 + bow * press * bulge
    lower_out = lower_in + (thick_u + 1.8) * bulge + 0.6
    lip_lift = (2.0 + 7.0 * rn) * bulge + 1.0  # protrusion toward the camera
    c["lip_upper"] = surface(np.concatenate([np.stack([x, upper_out], -1), np.stack([x, upper_in], -1)[:, ::-1]], 1),
                             np.concatenate([lip_lift, lip_lift[:, ::-1]], 1))
    c["lip_lower"] = surface(np.concatenate([np.stack([x, lower_in], -1), np.stack([x, lower_out], -1)[:, ::-1]], 1),
                             np.concatenate([lip_lift, lip_lift[:, ::-1]], 1))
    c["mouth_open"] = surface(np.concatenate([np.stack([x, upper_in], -1), np.stack([x, lower_in], -1)[:, ::-1]], 1),
                              np.concatenate([lip_lift, lip_lift[:, ::-1]], 1) - 1.0)
    c["lip_line"] = surface(np.stack([x, 0.5 * (upper_in + lower_in)], -1), lip_lift + 0.2)
    tw = np.linspace(-0.72, 0.72, 9)
    tb = _bulge(tw, power)
    up_teeth_h = np.minimum(4.2, 0.55 * gap)
    ut_top = corner_y + (centre_y - corner_y - 0.3 * gap) * tb
    c["teeth_up"] = surface(np.concatenate([np.stack([tw[None] * half_w, ut_top - 1.0], -1),
                                            np.stack([tw[None] * half_w, ut_top + up_teeth_h], -1)[:, ::-1]], 1), 1.0)
    lo_teeth_h = np.clip(0.25 * (gap - 6.0), 0.0, 2.8)
    lt_bot = corner_y + (centre_y - corner_y + 0.7 * gap) * tb
    c["teeth_lo"] = surface(np.concatenate([np.stack([0.8 * tw[None] * half_w, lt_bot - lo_teeth_h], -1),
                                            np.stack([0.8 * tw[None] * half_w, lt_bot + 1.0], -1)[:, ::-1]], 1), 1.0)
    g = gap[:, 0]
    c["tongue"] = surface(_ellipse(z0, centre_y + 0.48 * g, 0.36 * half_w[:, 0], 0.2 * g + 0.01, 12), 0.5)
    # cheeks lift and flush with the smile; folds from the nose wings past the mouth corners
    for side, key in ((-1.0, "l"), (1.0, "r")):
        cheek = _ellipse(side * (38.0 + 2 * smile), 27.0 - 6.0 * smile, 12.0 + 3.0 * smile, 7.5 + 2.0 * smile, 14)
        c[f"cheek_{key}"] = surface(cheek, 0.2)
        u = np.linspace(0, 1, 7)[None, :]
        fx = side * ((1 - u) * 16.0 + u * (half_w + 6.0) + 4.0 * np.sin(np.pi * u))
        fy = (1 - u) * 15.0 + u * (corner_y + 9.0)
        c[f"fold_{key}"] = surface(np.stack([fx, fy], -1), 0.2)
    # chin: a soft crease under the lower lip that drops with the jaw
    cx_ = np.linspace(-9, 9, 7)
    cy_ = 62.0 + 9.0 * jaw[:, None] + 1.5 * (1 - (cx_ / 9) ** 2)[None, :]
    c["chin"] = surface(np.stack([np.broadcast_to(cx_, (T, 7)), cy_], -1), 0.3)
    return c


# ---------------------------------------------------------------------------------------------
# Frames
# ---------------------------------------------------------------------------------------------
def _mix(a, b, w: float) -> tuple[int, int, int]:  # noqa: ANN001
    w = float(np.clip(w, 0.0, 1.0))
    return tuple(int(round((1 - w) * x + w * y)) for x, y in zip(a, b))  # type: ignore[return-value]


def draw_frames(
    p: np.ndarray,
    lip_gap: np.ndarray,
    mouth_width: np.ndarray,
    rot: np.ndarray,
    trans: np.ndarray,
    size: int,
    colors: dict[str, tuple[int, int, int]],
    index: dict[str, int],
    hair_offset: float,
) -> Iterator[np.ndarray]:
    """Frames (size, size, 3) uint8 for clipped params p (T, P), exact mouth measures (T,) and poses."""
    import cv2

    T = p.shape[0]
    focal = FOCAL_PER_PX * size
    centre = np.array([0.5, CENTRE_Y]) * size
    scale = float(1 << SUBPIXEL_BITS)
    aa, bits = cv2.LINE_AA, SUBPIXEL_BITS
    thin = max(1, int(round(size / 300)))
    thick = max(1, int(round(size / 150)))

    def project(points: np.ndarray, rotate: bool = True) -> np.ndarray:
        """Head-frame points (T, K, 3) → fixed-point pixels (T, K, 2) int32."""
        cam = (np.einsum("tij,tkj->tki", rot, points) if rotate else points) + trans[:, None, :]
        pix = focal * cam[..., :2] / np.clip(cam[..., 2:], 50.0, None) + centre
        return np.round(np.clip(pix, -4 * size, 5 * size) * scale).astype(np.int32)

    head = head_model(hair_offset)
    curves = face_curves(p, lip_gap, mouth_width, index)
    names = list(curves)
    bounds = np.cumsum([0] + [curves[n].shape[1] for n in names])
    feat = project(np.concatenate([np.broadcast_to(curves[n], (T,) + curves[n].shape[1:]) for n in names], axis=1))
    seg = {n: (int(bounds[i]), int(bounds[i + 1])) for i, n in enumerate(names)}

    jaw_drop = np.zeros((T, len(head.face), 3))
    jaw_drop[:, head.lower, 1] = 10.0 * p[:, index["jaw_open"], None]
    face_pix = project(head.face[None] + jaw_drop)  # (T, Sf, 2)
    hair_pix = project(np.broadcast_to(head.hair, (T,) + head.hair.shape))
    light_head = np.einsum("tji,j->ti", rot, LIGHT_CAMERA)  # Rᵀ L: the light in head coordinates
    lighting = (head.face_normals @ light_head.T).T  # (T, Sf) n · light
    cam_head = np.einsum("tji,tj->ti", rot, -trans)  # camera centre in head coordinates
    hair_in_front = cam_head @ HAIR_NORMAL < hair_offset  # the camera sees the cap over the face
    # feature visibility: a feature is drawn when its anchor faces the camera
    anchors = {"eye_l": (-30.0, -15.0), "eye_r": (30.0, -15.0), "nose": (0.0, 10.0), "mouth": (0.0, 45.0)}
    visible = {}
    for key, (ax, ay) in anchors.items():
        pt = surface(np.array([ax, ay]))
        normal = pt / HEAD_AXES_MM**2
        visible[key] = (cam_head - pt) @ normal > 0  # (T,)
    ears = {}
    for side, key in ((-1.0, "l"), (1.0, "r")):
        u = np.linspace(0, 2 * np.pi, 16, endpoint=False)
        out = 6.0 + 6.0 * (1 + np.cos(u))  # mm outward
        ear = np.stack([side * (HEAD_AXES_MM[0] - 8.0 + out), -4.0 + 15.0 * np.sin(u) - 3 * np.cos(u), 8.0 + 0.3 * out], -1)
        inner = np.stack([side * (HEAD_AXES_MM[0] - 4.0 + 0.6 * out), -3.0 + 9.0 * np.sin(u), 7.0 + 0.3 * out], -1)
        ears[key] = (project(np.broadcast_to(ear, (T, 16, 3))), project(np.broadcast_to(inner, (T, 16, 3))),
                     (cam_head - [side * HEAD_AXES_MM[0], 0.0, 0.0]) @ [side, 0.0, 0.0] > 20.0)
    neck_top = project(np.broadcast_to(np.array([[-33, 55, 25], [33, 55, 25], [28, 20, 40], [-28, 20, 40]], float), (T, 4, 3)))
    neck_low = project(np.broadcast_to(np.array([[36, 175, 40], [-36, 175, 40]], float), (T, 2, 3)), rotate=False)
    torso = project(np.broadcast_to(np.array(
        [[-38, 134, 45], [0, 165, 40], [38, 134, 45], [100, 150, 60], [165, 190, 70], [200, 280, 80], [220, 600, 80],
         [-220, 600, 80], [-200, 280, 80], [-165, 190, 70], [-100, 150, 60]], float), (T, 11, 3)), rotate=False)
    background = np.empty((size, size, 3), dtype=np.uint8)
    ramp = np.linspace(0.0, 1.0, size)[:, None, None]
    background[:] = np.round((1 - ramp) * np.array(colors["bg"]) + ramp * np.array(colors["bg2"])).astype(np.uint8)
    col = {k: tuple(int(v) for v in c) for k, c in colors.items()}
    smile = p[:, index["smile"]]
    brow = p[:, index["brow_raise"]]
    gap_open = lip_gap > 0.3

    def fill(img: np.ndarray, pts: np.ndarray, color: tuple[int, int, int]) -> None:
        cv2.fillPoly(img, [pts], color, aa, bits)

    def line(img: np.ndarray, pts: np.ndarray, color: tuple[int, int, int], width: int, closed: bool = False) -> None:
        cv2.polylines(img, [pts], closed, color, width, aa, bits)

    for t in range(T):
        img = background.copy()
        part = {n: feat[t, a:b] for n, (a, b) in seg.items()}
        fill(img, cv2.convexHull(np.concatenate([neck_top[t], neck_low[t]])), col["shade"])
        fill(img, torso[t], col["shirt"])  # its V-neck shows the neck
        line(img, torso[t][:3], col["shirt_line"], thin)
        for key in "lr":  # ears facing away go behind the head
            outer, inner, front = ears[key]
            if not front[t]:
                fill(img, outer[t], col["shade"])
        face_hull = cv2.convexHull(face_pix[t])
        hair_hull = cv2.convexHull(hair_pix[t])
        pieces = [(face_hull, "face"), (hair_hull, "hair")]
        if not hair_in_front[t]:
            pieces.reverse()
        for hull, kind in pieces:
            if kind == "hair":
                fill(img, hull, col["hair"])
                continue
            fill(img, hull, col["shade"])
            for threshold, w in SHADING:  # nested lit caps, each convex: soft steps of light
                lit_pts = face_pix[t][lighting[t] > threshold]
                if len(lit_pts) >= 3:
                    shade = _mix(col["skin"], col["shade"], -w) if w < 0 else _mix(col["skin"], col["skin_lit"], w)
                    fill(img, cv2.convexHull(lit_pts), shade)
        if hair_in_front[t]:
            line(img, hair_hull, col["hair_line"], thin, closed=True)
        for key in "lr":
            outer, inner, front = ears[key]
            if front[t]:
                fill(img, outer[t], col["skin"])
                line(img, inner[t], col["shade"], thin, closed=True)
        if hair_in_front[t] and not visible["nose"][t]:
            yield img  # the top or back of the head: no face features to draw
            continue
        # cheeks, folds, creases
        for key in "lr":
            if smile[t] > 0.05:
                fill(img, part[f"cheek_{key}"], _mix(col["skin_lit"], col["blush"], 0.05 + 0.3 * smile[t]))
            if smile[t] > 0.25:
                line(img, part[f"fold_{key}"], _mix(col["skin"], col["line"], 0.45 * (smile[t] - 0.2)), thin)
        if brow[t] > 0.45:
            for k in range(2):
                line(img, part[f"crease_fh{k}"], _mix(col["skin"], col["line"], (brow[t] - 0.45) * 1.2), thin)
        # eyes: white, iris, pupil, glint, then the lids over them
        for key in "lr":
            if not visible[f"eye_{key}"][t]:
                continue
            fill(img, part[f"eye_{key}"], col["eye"])
            fill(img, part[f"iris_{key}"], col["iris"])
            fill(img, part[f"pupil_{key}"], col["pupil"])
            fill(img, part[f"glint_{key}"], col["eye"])
            fill(img, part[f"lid_up_{key}"], col["lid"])
            fill(img, part[f"lid_lo_{key}"], col["skin"])
            line(img, part[f"crease_{key}"], col["line"], thin)
            line(img, part[f"lash_{key}"], col["lash"], thick)
            fill(img, part[f"brow_{key}"], col["brow"])
        if visible["nose"][t]:
            line(img, part["nose_bridge"], _mix(col["skin"], col["line"], 0.45), thin)
            for key in "lr":
                fill(img, part[f"nostril_{key}"], col["nostril"])
                line(img, part[f"wing_{key}"], _mix(col["skin"], col["line"], 0.6), thin)
            fill(img, part["nose_tip"], _mix(col["skin"], col["skin_lit"], 0.8))
        if visible["mouth"][t]:
            line(img, part["chin"], _mix(col["skin"], col["line"], 0.35), thin)
            if gap_open[t]:
                fill(img, part["mouth_open"], col["mouth"])
                fill(img, part["tongue"], col["tongue"])
                fill(img, part["teeth_up"], col["teeth"])
                if lip_gap[t] > 6.5:
                    fill(img, part["teeth_lo"], col["teeth"])
            fill(img, part["lip_upper"], col["lip_dark"])
            fill(img, part["lip_lower"], col["lip"])
            if not gap_open[t]:
                line(img, part["lip_line"], col["mouth"], thin)
        yield img
