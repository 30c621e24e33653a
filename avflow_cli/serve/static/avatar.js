// The demo avatar drawn on a <canvas> from its named face parameters and a head pose.
// A direct port of avflow_cli/vision/demo_avatar.py (same geometry in millimetres, same pinhole
// camera, same colours), so the live stream looks like preview.mp4 without any server rendering.
// params: the 9 values of FACE_PARAM_NAMES (already clipped by the server);
// pose: [qw, qx, qy, qz, tx, ty, tz] (rotation head→camera, translation in mm).
"use strict";

const AvflowAvatar = (() => {
  const AXES = [75, 95, 85];            // head ellipsoid semi-axes (x, y, z), mm
  const FOCAL_PER_PX = 4.0;
  const LIP_OPEN_MM = 16, MOUTH_WIDTH_MM = 50, SMILE_WIDEN_MM = 14, ROUND_NARROW_MM = 12;
  const TRANS_LIMITS = [[-400, 400], [-400, 400], [300, 4000]];
  const C = {bg: "rgb(236,240,244)", skin: "rgb(241,194,160)", lip: "rgb(186,84,92)", brow: "rgb(84,56,40)",
             eye: "rgb(255,255,255)", iris: "rgb(60,90,140)", line: "rgb(120,80,60)", mouth: "rgb(70,20,30)"};
  const NEUTRAL_POSE = [1, 0, 0, 0, 0, 0, 1000];

  const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v));
  const linspace = (a, b, n) => Array.from({length: n}, (_, i) => a + (b - a) * i / (n - 1));

  function rotation(q) {
    let [w, x, y, z] = q;
    const n = Math.hypot(w, x, y, z);
    if (!isFinite(n) || n < 1e-8) { [w, x, y, z] = [1, 0, 0, 0]; } else { w /= n; x /= n; y /= n; z /= n; }
    return [[1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]];
  }

  function ellipse(cx, cy, rx, ry, n) {
    return Array.from({length: n}, (_, i) => {
      const a = 2 * Math.PI * i / n;
      return [cx + rx * Math.cos(a), cy + ry * Math.sin(a)];
    });
  }

  function curves(p) {
    const [jaw, closure, round, smile, brow, blinkL, blinkR, gazeX, gazeY] = p;
    const out = {};
    const gx = 4 * gazeX, gy = 2.5 * gazeY;
    [[-1, blinkL, "l"], [1, blinkR, "r"]].forEach(([side, blink, key]) => {
      const cx = 30 * side, cy = -15, openRy = 6 * (1 - blink) + 0.4;
      out["eye_" + key] = ellipse(cx, cy, 12, openRy, 14);
      out["iris_" + key] = ellipse(cx + gx, cy + gy, 4, Math.min(4, openRy), 10);
      const bump = [0, 2.5, 3.5, 2.5, 0];
      out["brow_" + key] = linspace(-13, 15, 5).map((d, i) => [cx + side * d, cy - 13 - 9 * brow - bump[i]]);
    });
    out.nose = [[0, -8], [3, 14], [-5, 19], [0, 21], [6, 19]];
    const gap = LIP_OPEN_MM * jaw * (1 - closure);
    const halfW = 0.5 * (MOUTH_WIDTH_MM + SMILE_WIDEN_MM * smile - ROUND_NARROW_MM * round);
    const centreY = 45, cornerY = 45 - 5 * smile + 2 * round, thick = 4 + 2 * round;
    const s = linspace(-1, 1, 9);
    ["upper_out", "lower_out", "upper_in", "lower_in"].forEach((k) => { out[k] = []; });
    s.forEach((si) => {
      const bulge = Math.pow(1 - si * si, 0.7), x = si * halfW;
      const upperIn = cornerY + (centreY - cornerY - 0.3 * gap) * bulge;
      const lowerIn = cornerY + (centreY - cornerY + 0.7 * gap) * bulge;
      out.upper_out.push([x, upperIn - thick * bulge - 0.5]);
      out.lower_out.push([x, lowerIn + (thick + 1) * bulge + 0.5]);
      out.upper_in.push([x, upperIn]);
      out.lower_in.push([x, lowerIn]);
    });
    out.chin = linspace(-1, 1, 7).map((u) => [14 * u, 75 + 10 * jaw - 2 * (1 - u * u)]);
    return {curves: out, gapOpen: gap > 0.3, blinks: [blinkL, blinkR]};
  }

  function draw(ctx, params, pose) {
    const size = ctx.canvas.width;
    const p = params || [0, 0, 0, 0, 0, 0, 0, 0, 0];
    const q = pose || NEUTRAL_POSE;
    const R = rotation(q.slice(0, 4));
    const t = q.slice(4, 7).map((v, i) => clamp(isFinite(v) ? v : NEUTRAL_POSE[4 + i], ...TRANS_LIMITS[i]));
    const focal = FOCAL_PER_PX * size;
    const project = (pt) => {
      const cam = [0, 1, 2].map((i) => R[i][0] * pt[0] + R[i][1] * pt[1] + R[i][2] * pt[2] + t[i]);
      const z = Math.max(cam[2], 50);
      return [clamp(focal * cam[0] / z + size / 2, -4 * size, 5 * size), clamp(focal * cam[1] / z + size / 2, -4 * size, 5 * size)];
    };
    const surface = ([x, y]) => {
      const inside = 1 - (x / AXES[0]) ** 2 - (y / AXES[1]) ** 2;
      return [x, y, -AXES[2] * Math.sqrt(Math.max(inside, 0.05))];
    };
    const path = (pts, close) => {
      ctx.beginPath();
      pts.forEach(([x, y], i) => (i ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
      if (close) ctx.closePath();
    };
    const fill = (pts, color) => { path(pts, true); ctx.fillStyle = color; ctx.fill(); };
    const stroke = (pts, color, width, close) => { path(pts, close); ctx.strokeStyle = color; ctx.lineWidth = width; ctx.stroke(); };

    ctx.fillStyle = C.bg;
    ctx.fillRect(0, 0, size, size);
    // head silhouette: outline of the rotated ellipsoid (as the Python renderer computes it)
    const A = AXES.map((a) => a * a);
    const S = [0, 1, 2].map((i) => [0, 1, 2].map((j) => R[i][0] * A[0] * R[j][0] + R[i][1] * A[1] * R[j][1] + R[i][2] * A[2] * R[j][2]));
    const l11 = Math.sqrt(S[0][0]), l21 = S[1][0] / l11, l22 = Math.sqrt(Math.max(S[1][1] - l21 * l21, 1e-6));
    const outline = Array.from({length: 40}, (_, i) => {
      const a = 2 * Math.PI * i / 40;
      const rx = l11 * Math.cos(a), ry = l21 * Math.cos(a) + l22 * Math.sin(a);
      return [focal * (rx + t[0]) / t[2] + size / 2, focal * (ry + t[1]) / t[2] + size / 2];
    });
    const neck = [[-30, 80, 20], [30, 80, 20], [34, 150, 20], [-34, 150, 20]].map(project);
    fill(neck, C.skin);
    fill(outline, C.skin);
    stroke(outline, C.line, 1, true);
    const {curves: cv, gapOpen, blinks} = curves(p);
    const px = {};
    Object.keys(cv).forEach((k) => { px[k] = cv[k].map((pt) => project(surface(pt))); });
    ["l", "r"].forEach((key, k) => {
      fill(px["eye_" + key], C.eye);
      if (blinks[k] < 0.6) fill(px["iris_" + key], C.iris);
      stroke(px["eye_" + key], C.line, 1, true);
    });
    stroke(px.brow_l, C.brow, 2, false);
    stroke(px.brow_r, C.brow, 2, false);
    stroke(px.nose, C.line, 1, false);
    stroke(px.chin, C.line, 1, false);
    fill(px.upper_out.concat(px.lower_out.slice().reverse()), C.lip);
    if (gapOpen) fill(px.upper_in.concat(px.lower_in.slice().reverse()), C.mouth);
    else stroke(px.upper_in, C.mouth, 1, false);
  }

  return {draw};
})();
