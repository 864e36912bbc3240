"""OTB success and precision plots (as the got10k toolkit draws them) and tracked-box sheets."""

from __future__ import annotations

from pathlib import Path

import cv2
import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from correlearn.eval.otb import N_CE_BINS, N_IOU_BINS  # noqa: E402


def plot_otb_curves(runs: dict[str, dict], folder: str | Path) -> tuple[Path, Path]:
    """``success_plots.png`` and ``precision_plots.png`` of one or more trackers.

    Args:
        runs: tracker name -> an :func:`~correlearn.eval.otb.otb_report` dict.
        folder: where the two PNGs go.

    Returns:
        The two paths (success, precision).
    """
    folder = Path(folder)
    out = []
    specs = (
        ("success", np.linspace(0, 1, N_IOU_BINS), "Overlap threshold", "Success rate", (0, 1)),
        ("precision", np.arange(N_CE_BINS), "Location error threshold", "Precision", (0, 50)),
    )
    for key, xs, xlabel, ylabel, xlim in specs:
        fig, ax = plt.subplots(figsize=(5, 3.5), dpi=100)
        for name, rep in runs.items():
            ys = np.asarray(rep[f"{key}_curve"])
            ax.plot(xs, ys, lw=2, label=f"{name} [{rep[key]:.1f}]")
        ax.set(xlabel=xlabel, ylabel=ylabel, xlim=xlim, ylim=(0, 1.02))
        ax.set_title(f"{key.capitalize()} plots of OPE")
        ax.legend(frameon=False, loc="upper right" if key == "success" else "lower right")
        fig.tight_layout()
        path = folder / f"{key}_plots.png"
        fig.savefig(path)
        plt.close(fig)
        out.append(path)
    return out[0], out[1]


def _draw(img: np.ndarray, box: np.ndarray, color: tuple[int, int, int]) -> None:
    x, y, w, h = (int(round(v)) for v in box)
    cv2.rectangle(img, (x - 1, y - 1), (x + w - 2, y + h - 2), color, 2)


def box_sheet(frames: list[np.ndarray], pred: np.ndarray, gt: np.ndarray, n: int = 6) -> np.ndarray:
    """``n`` evenly spaced frames side by side, ground truth green and the tracker red.

    Args:
        frames: (H, W, 3) uint8 RGB frames of one sequence.
        pred: (T, 4) tracked 1-based ``x, y, w, h`` boxes.
        gt: (T, 4) ground truth.
        n: frames to show (fewer for shorter sequences).

    Returns:
        (H, n W, 3) uint8.
    """
    idx = np.unique(np.linspace(0, len(frames) - 1, min(n, len(frames))).round().astype(int))
    tiles = []
    for t in idx:
        img = frames[t].copy()
        _draw(img, gt[t], (0, 200, 0))
        _draw(img, pred[t], (230, 0, 0))
        tiles.append(img)
    return np.concatenate(tiles, axis=1)
