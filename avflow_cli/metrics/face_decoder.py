"""Pluggable face decoders for lip and smile F1: face code (T, F) → lip and mouth-corner distances.

The paper (AV-Flow §4.1) measures lip closures and smiles on the avatar's decoded geometry.
Face codes are only meaningful through a decoder, so avflow accepts three kinds
(docs/ARCHITECTURE.md §3, INTERFACES.md §3):

* the demo avatar's exact ``FaceDecoder`` (``face_decoder.npz`` written by ``avflow demo
  corpus`` and copied beside the shards), with its own ``LIP_CLOSED_THRESHOLD`` and
  ``SMILE_THRESHOLD``;
* a linear map ``.npz`` with ``W`` (F, 2) and ``b`` (2,), so ``[lip, corner] = codes @ W + b``;
  optional scalar keys ``lip_closed_threshold`` and ``smile_threshold`` carry its thresholds;
* a TorchScript file (``.pt``/``.ts``/``.torchscript``/``.jit``) whose module maps a float32
  tensor (T, F) to (T, 2) ``[lip distance, mouth-corner distance]``.

Distances follow the demo avatar's convention: small lip distance = closed lips, large
mouth-corner distance = smile. Thresholds given on the command line override the decoder's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from avflow_cli.errors import AvflowError, InputFileError
from avflow_cli.npzfile import READ_ERRORS
from avflow_cli.render.demo_avatar import FACE_DECODER_FILE

TORCHSCRIPT_SUFFIXES = (".pt", ".ts", ".torchscript", ".jit")


@dataclass
class MouthDecoder:
    """Face code → (lip distance, mouth-corner distance) with the thresholds that go with it."""

    name: str
    distances_fn: Callable[[np.ndarray], np.ndarray]  # (T, F) -> (T, 2)
    lip_closed_threshold: float | None
    smile_threshold: float | None
    path: str = ""

    def distances(self, codes: np.ndarray) -> np.ndarray:
        """shape: (T, F) -> (T, 2) as [lip distance, mouth-corner distance]."""
        codes = np.asarray(codes, dtype=np.float32)
        if codes.ndim != 2:
            raise AvflowError(f"face codes must be (T, F), got {codes.shape}")
        out = np.asarray(self.distances_fn(codes), dtype=np.float64)
        if out.shape != (codes.shape[0], 2):
            raise AvflowError(f"face decoder {self.name} returned {out.shape}, expected ({codes.shape[0]}, 2)")
        return out

    def lip_distance(self, codes: np.ndarray) -> np.ndarray:
        return self.distances(codes)[:, 0]

    def mouth_corner_distance(self, codes: np.ndarray) -> np.ndarray:
        return self.distances(codes)[:, 1]

    def with_thresholds(self, lip: float | None, smile: float | None) -> "MouthDecoder":
        """A copy whose thresholds are replaced where ``lip``/``smile`` are given."""
        return MouthDecoder(
            self.name,
            self.distances_fn,
            self.lip_closed_threshold if lip is None else float(lip),
            self.smile_threshold if smile is None else float(smile),
            self.path,
        )


def linear_decoder(W: np.ndarray, b: np.ndarray, *, lip: float | None = None, smile: float | None = None,
                   name: str = "linear") -> MouthDecoder:
    """A decoder ``[lip, corner] = codes @ W + b`` with W (F, 2), b (2,)."""
    W = np.asarray(W, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64).reshape(-1)
    if W.ndim != 2 or W.shape[1] != 2 or b.shape != (2,):
        raise AvflowError(f"linear face decoder needs W (F, 2) and b (2,), got W {W.shape}, b {b.shape}")

    def fn(codes: np.ndarray) -> np.ndarray:
        if codes.shape[1] != W.shape[0]:
            raise AvflowError(f"face codes have {codes.shape[1]} dims, the linear decoder expects {W.shape[0]}")
        return codes @ W + b  # (T, 2)

    return MouthDecoder(name, fn, lip, smile)


def _demo_decoder(path: Path) -> MouthDecoder:
    from avflow_cli.render import demo_avatar

    try:
        dec = demo_avatar.FaceDecoder.load(path)
    except AvflowError:
        raise
    except Exception as err:  # noqa: BLE001 - any failure means "not a demo decoder file"
        raise InputFileError(path, f"neither a linear map (W, b) nor a demo avatar FaceDecoder ({err})") from err

    def fn(codes: np.ndarray) -> np.ndarray:
        return np.stack([dec.lip_distance(codes), dec.mouth_corner_distance(codes)], axis=1)  # (T, 2)

    return MouthDecoder(
        "demo-avatar",
        fn,
        float(demo_avatar.LIP_CLOSED_THRESHOLD),
        float(demo_avatar.SMILE_THRESHOLD),
        str(path),
    )


def _torchscript_decoder(path: Path) -> MouthDecoder:
    import torch

    try:
        module = torch.jit.load(str(path), map_location="cpu").eval()
    except Exception as err:  # noqa: BLE001 - torch raises many types for bad files
        raise InputFileError(path, f"not a loadable TorchScript module ({err})") from err

    def fn(codes: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return module(torch.from_numpy(codes)).float().cpu().numpy()  # (T, 2)

    return MouthDecoder("torchscript", fn, None, None, str(path))


def load_mouth_decoder(path: str | Path) -> MouthDecoder:
    """Load a face decoder file of any supported kind (see module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, "face decoder file not found")
    if path.suffix.lower() in TORCHSCRIPT_SUFFIXES:
        return _torchscript_decoder(path)
    if path.suffix.lower() != ".npz":
        raise InputFileError(path, f"unknown face decoder format (use .npz or TorchScript {TORCHSCRIPT_SUFFIXES})")
    try:
        with np.load(path, allow_pickle=False) as z:
            keys = set(z.files)
            if {"W", "b"} <= keys:
                lip = float(z["lip_closed_threshold"]) if "lip_closed_threshold" in keys else None
                smile = float(z["smile_threshold"]) if "smile_threshold" in keys else None
                dec = linear_decoder(z["W"], z["b"], lip=lip, smile=smile)
                dec.path = str(path)
                return dec
    except READ_ERRORS as err:  # a damaged archive too (BadZipFile, a bad CRC)
        raise InputFileError(path, f"not a readable .npz ({err})") from err
    return _demo_decoder(path)


def find_mouth_decoder(*dirs: str | Path | None) -> Path | None:
    """The first ``face_decoder.npz`` found in ``dirs`` (shards dir, model dir, ...)."""
    for d in dirs:
        if d is not None and (Path(d) / FACE_DECODER_FILE).is_file():
            return Path(d) / FACE_DECODER_FILE
    return None
