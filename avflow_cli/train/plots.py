"""Sample images written during training: mel and motion of a generated clip next to the truth."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from avflow_cli.fsutil import atomic_path


def plot_streams(path: str | Path, panels: list[tuple[str, np.ndarray, np.ndarray | None]], fps: float, title: str = "") -> Path:
    """One row per stream: ``(name, generated (T, D), truth (T, D) | None)``.

    Mel-like streams (D > 16) are drawn as images (generated | truth side by side), low-dim
    motion as line plots of the first dims (solid generated, dashed truth).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(panels), 1, figsize=(10, 2.6 * len(panels)), squeeze=False)
    for ax, (name, gen, truth) in zip(axes[:, 0], panels):
        T = gen.shape[0]
        truth = None if truth is None else _fit_length(truth, T)
        extent_t = T / fps
        if gen.shape[1] > 16:
            img = gen if truth is None else np.concatenate([gen, np.full((T, 2), np.nan), truth], 1)
            ax.imshow(img.T, origin="lower", aspect="auto", interpolation="nearest", extent=(0, extent_t, 0, img.shape[1]))
            ax.set_ylabel(f"{name}\n(gen | truth)" if truth is not None else name)
        else:
            t = np.arange(T) / fps
            for d in range(min(4, gen.shape[1])):
                line = ax.plot(t, gen[:, d], lw=1)[0]
                if truth is not None:
                    ax.plot(t, truth[:, d], lw=1, ls="--", color=line.get_color())
            ax.set_ylabel(name)
        ax.set_xlabel("s")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=80)
    plt.close(fig)
    return path


def _fit_length(truth: np.ndarray, frames: int) -> np.ndarray:
    """Cut or NaN-pad ``truth`` to ``frames`` rows: generated and true lengths differ (t2t durations)."""
    if len(truth) >= frames:
        return truth[:frames]
    pad = np.full((frames - len(truth),) + truth.shape[1:], np.nan, dtype=np.float32)
    return np.concatenate([truth.astype(np.float32), pad], 0)
