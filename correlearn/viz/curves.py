"""Training curves as PNG (matplotlib, headless): loss against steps, held-out J&F against steps.

Training code (pretraining, fine-tuning, the SiamFC head) saves its loss curve in its artifact;
the report (:mod:`correlearn.report.jf`) draws each method's J&F curve with its baselines.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def plot_loss_curve(
    history: Sequence[tuple[int, float]], path: str | Path, title: str = ""
) -> Path:
    """Plot (step, loss) pairs, raw and smoothed (EMA 0.9), and save a PNG.

    Args:
        history: (step, loss) pairs in step order.
        path: output PNG.
        title: plot title.

    Returns:
        ``path``.
    """
    steps = [s for s, _ in history]
    losses = [v for _, v in history]
    smooth, acc = [], None
    for v in losses:
        acc = v if acc is None else 0.9 * acc + 0.1 * v
        smooth.append(acc)
    fig, ax = plt.subplots(figsize=(5, 3), dpi=100)
    ax.plot(steps, losses, alpha=0.35, lw=1, label="loss")
    ax.plot(steps, smooth, lw=2, label="smoothed")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.legend(frameon=False)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def plot_jf_curve(
    points: Sequence[tuple[int, float]],
    baselines: dict[str, float],
    path: str | Path,
    title: str = "",
) -> Path:
    """Plot held-out J&F against training steps, with each baseline as a horizontal line.

    Args:
        points: (step, J&F) of the evaluated checkpoints, in step order.
        baselines: name -> J&F of a baseline (random init per seed, BN-calibrated init).
        path: output PNG.
        title: plot title.

    Returns:
        ``path``.
    """
    fig, ax = plt.subplots(figsize=(5, 3), dpi=100)
    ax.plot([s for s, _ in points], [v for _, v in points], "o-", lw=2, label="checkpoint")
    styles = iter(["--", ":", "-.", (0, (1, 3))])
    for name, value in baselines.items():
        ax.axhline(value, ls=next(styles, "--"), lw=1.2, color="0.35", label=name)
    ax.set_xlim(left=0)
    ax.set_xlabel("training step")
    ax.set_ylabel("held-out J&F")
    ax.set_title(title)
    ax.legend(frameon=False, fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)
