"""Loss curves as PNG (matplotlib, headless)."""

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
