"""Wavefront OBJ topology reader: vertices, texture coordinates and their triangle indices.

The release renders ``face_topo_small_neck.obj`` (its ``models/decoder/utils.py:load_obj``):
``v`` lines give the template vertices, ``vt`` lines the UVs and ``f a/ta b/tb c/tc`` lines the
faces (1-based). Texture coordinates are required here: without them there is nothing to map
the decoded texture onto. Polygons with more than three corners are split into a fan of
triangles. Letters: V vertices, Nt texture coordinates, F triangles.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avflow_cli.errors import InputFileError
from avflow_cli.npzfile import READ_ERRORS, npz_problem

__all__ = ["Topology", "read_obj"]


@dataclass(frozen=True)
class Topology:
    """A triangle mesh with separate vertex and texture-coordinate indices."""

    v: np.ndarray  # (V, 3) float32 template positions
    vt: np.ndarray  # (Nt, 2) float32 UVs in the OBJ convention (v = 0 at the bottom of the image)
    vi: np.ndarray  # (F, 3) int64 vertex indices
    vti: np.ndarray  # (F, 3) int64 texture-coordinate indices

    @property
    def num_vertices(self) -> int:
        return int(self.v.shape[0])

    def save_npz(self, path: str | Path) -> None:
        """Plain arrays, no pickle (the avatar folder's ``topology.npz``)."""
        np.savez(path, v=self.v, vt=self.vt, vi=self.vi, vti=self.vti)

    @classmethod
    def load_npz(cls, path: str | Path) -> Topology:
        try:
            with np.load(path, allow_pickle=False) as z:
                topo = cls(z["v"].astype(np.float32), z["vt"].astype(np.float32), z["vi"].astype(np.int64),
                           z["vti"].astype(np.int64))
        except READ_ERRORS as err:  # damaged archives (BadZipFile, a bad CRC) too; TypeError: an .npy has no `with`
            problem = str(err) if isinstance(err, KeyError) else npz_problem(path, err)
            raise InputFileError(path, f"not a mesh topology file ({problem})") from err
        topo.check(path)
        return topo

    def check(self, path: str | Path) -> None:
        """One-line errors for shapes or indices that cannot describe a textured mesh."""
        if self.v.ndim != 2 or self.v.shape[1] != 3 or self.v.shape[0] < 3:
            raise InputFileError(path, f"needs at least 3 vertices with 3 coordinates, got {self.v.shape}")
        if self.vt.ndim != 2 or self.vt.shape[1] != 2 or self.vt.shape[0] < 1:
            raise InputFileError(path, "has no texture coordinates (vt lines): the decoded texture cannot be mapped")
        if self.vi.ndim != 2 or self.vi.shape[1] != 3 or self.vi.shape[0] < 1 or self.vti.shape != self.vi.shape:
            raise InputFileError(path, f"needs triangles with texture indices, got faces {self.vi.shape} / {self.vti.shape}")
        if self.vi.min() < 0 or self.vi.max() >= self.v.shape[0]:
            raise InputFileError(path, f"a face refers to a vertex outside 1..{self.v.shape[0]}")
        if self.vti.min() < 0 or self.vti.max() >= self.vt.shape[0]:
            raise InputFileError(path, f"a face refers to a texture coordinate outside 1..{self.vt.shape[0]}")
        if not (np.isfinite(self.v).all() and np.isfinite(self.vt).all()):
            raise InputFileError(path, "holds NaN or Inf coordinates")


def _index(token: str, count: int, path: Path, lineno: int) -> int:
    """1-based (or negative, relative) OBJ index → 0-based."""
    try:
        i = int(token)
    except ValueError as err:
        raise InputFileError(path, f"line {lineno}: bad index {token!r}") from err
    if i == 0:
        raise InputFileError(path, f"line {lineno}: OBJ indices start at 1")
    return i - 1 if i > 0 else count + i


def read_obj(path: str | Path) -> Topology:
    """Read an OBJ file's vertices, UVs and (fan-triangulated) faces; strict one-line errors."""
    path = Path(path)
    try:
        text = path.read_text(errors="strict")
    except FileNotFoundError as err:
        raise InputFileError(path, "file not found (the avatar's mesh topology .obj)") from err
    except (OSError, UnicodeDecodeError) as err:
        raise InputFileError(path, f"cannot read the mesh ({err})") from err
    v: list[list[float]] = []
    vt: list[list[float]] = []
    vi: list[list[int]] = []
    vti: list[list[int]] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        try:
            if parts[0] == "v":
                v.append([float(x) for x in parts[1:4]])
                if len(v[-1]) != 3:
                    raise ValueError("a vertex needs 3 coordinates")
            elif parts[0] == "vt":
                vt.append([float(x) for x in parts[1:3]])
                if len(vt[-1]) != 2:
                    raise ValueError("a texture coordinate needs 2 values")
        except ValueError as err:
            raise InputFileError(path, f"line {lineno}: {err}") from err
        if parts[0] != "f":
            continue
        corners = parts[1:]
        if len(corners) < 3:
            raise InputFileError(path, f"line {lineno}: a face needs at least 3 corners")
        fv, ft = [], []
        for corner in corners:
            fields = corner.split("/")
            if len(fields) < 2 or not fields[1]:
                raise InputFileError(path, f"line {lineno}: face corner {corner!r} has no texture index (need v/vt)")
            fv.append(_index(fields[0], len(v), path, lineno))
            ft.append(_index(fields[1], len(vt), path, lineno))
        for k in range(1, len(corners) - 1):  # fan: (0, k, k+1)
            vi.append([fv[0], fv[k], fv[k + 1]])
            vti.append([ft[0], ft[k], ft[k + 1]])
    if not vi:
        raise InputFileError(path, "has no faces (f lines): not a mesh")
    topo = Topology(
        v=np.asarray(v, dtype=np.float32).reshape(-1, 3),
        vt=np.asarray(vt, dtype=np.float32).reshape(-1, 2),
        vi=np.asarray(vi, dtype=np.int64),
        vti=np.asarray(vti, dtype=np.int64),
    )
    topo.check(path)
    return topo
