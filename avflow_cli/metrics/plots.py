"""Evaluation plots in the style of AV-Flow Fig. 6 / Fig. 9.

* Face-code energy vs mel energy over time (Fig. 6: audio-visual coupling), generated and ground
  truth: face energy is the kinetic energy ‖f_t − f_{t−1}‖₂ of the face codes, mel energy the
  mean log-mel over bands; each curve is z-scored so they share one axis.
* Lip distance over time (Fig. 9: lip sync), generated vs truth, with the closure threshold.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from avflow_cli.constants import FPS
from avflow_cli.fsutil import atomic_path
from avflow_cli.metrics.beat import face_velocity


def _z(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return (x - x.mean()) / (x.std() + 1e-9)


def plot_clip(
    path: str | Path,
    clip_id: str,
    *,
    gen_face: np.ndarray,
    gen_mel: np.ndarray,
    true_face: np.ndarray,
    true_mel: np.ndarray,
    gen_lip: np.ndarray | None = None,
    true_lip: np.ndarray | None = None,
    lip_threshold: float | None = None,
) -> Path:
    """Write one PNG with the energy panels (generated, truth) and, given a decoder, the lip panel."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = 3 if gen_lip is not None and true_lip is not None else 2
    fig, axes = plt.subplots(rows, 1, figsize=(11, 2.6 * rows), sharex=True)
    for ax, (label, face, mel) in zip(axes, (("generated", gen_face, gen_mel), ("ground truth", true_face, true_mel))):
        n = min(len(face), len(mel))
        t = np.arange(n) / FPS
        ax.plot(t, _z(face_velocity(face[:n])), color="tab:blue", lw=1.0, label="face-code energy")
        ax.plot(t, _z(np.mean(mel[:n], axis=1)), color="tab:orange", lw=1.0, alpha=0.8, label="mel energy")
        ax.set_ylabel("z-score")
        ax.set_title(f"{clip_id}: {label}", fontsize=10, loc="left")
        ax.legend(loc="upper right", fontsize=8)
    if rows == 3:
        ax = axes[2]
        n = min(len(gen_lip), len(true_lip))
        t = np.arange(n) / FPS
        ax.plot(t, true_lip[:n], color="black", lw=1.0, label="ground truth")
        ax.plot(t, gen_lip[:n], color="tab:red", lw=1.0, alpha=0.85, label="generated")
        if lip_threshold is not None:
            ax.axhline(lip_threshold, color="gray", ls="--", lw=0.8, label="closure threshold")
        ax.set_ylabel("lip distance")
        ax.set_title("inner-lip distance", fontsize=10, loc="left")
        ax.legend(loc="upper right", fontsize=8)
    axes[-1].set_xlabel("time (s)")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return Path(path)
