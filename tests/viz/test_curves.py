"""The loss and J&F-vs-steps curves: headless PNGs of the documented size, baselines drawn."""

import numpy as np
from PIL import Image

from correlearn.viz.curves import plot_jf_curve, plot_loss_curve


def _pixels(path):
    with Image.open(path) as im:
        assert im.format == "PNG" and im.size == (500, 300)  # figsize (5, 3) at 100 dpi
        return np.asarray(im.convert("RGB"))


def test_loss_curve_is_a_png(tmp_path):
    history = [(s, 1.0 / (s + 1)) for s in range(50)]
    out = plot_loss_curve(history, tmp_path / "loss.png", "byol")
    assert out == tmp_path / "loss.png"
    assert len(np.unique(_pixels(out).reshape(-1, 3), axis=0)) > 2  # more than a blank canvas


def test_jf_curve_draws_each_baseline(tmp_path):
    points = [(30, 0.365), (60, 0.565)]
    bare = _pixels(plot_jf_curve(points, {}, tmp_path / "bare.png", "byol"))
    lines = {"random init, seed 0": 0.265, "BN-calibrated init": 0.375}
    with_lines = _pixels(plot_jf_curve(points, lines, tmp_path / "lines.png", "byol"))
    assert (bare != with_lines).any(axis=2).sum() > 500  # two lines across the axes, a legend
