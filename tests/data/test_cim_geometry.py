import math

import numpy as np
import pytest
import torch

from correlearn.data.cim_geometry import (
    ExemplarBox,
    box_corners,
    cut_exemplar,
    gt_map,
    sample_exemplar_geometry,
)
from correlearn.data.cim_pairs import CIMPairConfig


def test_axis_aligned_map_has_exact_extent_and_area():
    box = ExemplarBox(cx=20 + 30 / 2, cy=10 + 12 / 2, w=30.0, h=12.0, angle=0.0)
    y = gt_map(box, 64)
    assert y.dtype == torch.uint8 and y.shape == (64, 64)
    rows, cols = torch.nonzero(y, as_tuple=True)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (10, 21, 20, 49)
    assert int(y.sum()) == 30 * 12  # r0 = 360 / 64^2 exactly
    assert gt_map(box, (40, 64)).shape == (40, 64)


def test_rotated_square_is_a_diamond():
    s, c = 40.0, 80.0
    y = gt_map(ExemplarBox(c, c, s, s, 45.0), 160).numpy()
    half = s / math.sqrt(2)  # the diamond's half-diagonal
    rows, cols = np.nonzero(y)
    assert abs(y.sum() - s * s) <= 4 * s  # rasterisation of the border
    assert abs((cols.max() - cols.min() + 1) - 2 * half) <= 2
    assert abs((rows.max() - rows.min() + 1) - 2 * half) <= 2
    assert y[80, 80] == 1 and y[80, int(c + half) - 2] == 1 and y[int(c - half) + 2, 80] == 1
    # The axis-aligned bounding box's corner regions are empty.
    k = int(half) - 4
    assert y[80 - k, 80 - k] == y[80 + k, 80 + k] == y[80 - k, 80 + k] == 0
    np.testing.assert_array_equal(y, y.T)


def test_positive_angle_turns_counter_clockwise_on_screen():
    box = ExemplarBox(32.0, 32.0, 40.0, 6.0, 30.0)
    y = gt_map(box, 64)
    dx, dy = 15 * math.cos(math.radians(30)), 15 * math.sin(math.radians(30))
    assert y[int(32 - dy), int(32 + dx)] == 1  # up-right along the long side
    assert y[int(32 + dy), int(32 + dx)] == 0  # down-right is outside


def test_sampled_crops_lie_inside_and_map_area_is_r0():
    rng = np.random.default_rng(0)
    m = 64
    for cfg in (CIMPairConfig(), CIMPairConfig(exemplar_scale=(0.05, 0.48))):
        for _ in range(150):
            box = sample_exemplar_geometry(rng, m, cfg)
            corners = box_corners(box)
            assert corners.min() >= -1e-6 and corners.max() <= m + 1e-6
            r0 = box.w * box.h / m**2
            assert r0 <= cfg.exemplar_scale[1] + 1e-9
            assert 1 / 3 - 1e-6 <= box.h / box.w <= 3 + 1e-6 or min(box.w, box.h) <= 2.0
            assert -45 <= box.angle <= 45
            area = int(gt_map(box, m).sum())
            assert area > 0 and abs(area - box.w * box.h) <= 2 * (box.w + box.h) + 4


def _effective_r0(cfg: CIMPairConfig, n: int = 3000, m: int = 160) -> np.ndarray:
    rng = np.random.default_rng(7)
    boxes = [sample_exemplar_geometry(rng, m, cfg) for _ in range(n)]
    return np.array([b.w * b.h / m**2 for b in boxes])


def _follows_uniform(r0: np.ndarray, lo: float, hi: float) -> bool:
    """Kolmogorov-Smirnov at 1% with scipy; without it, the deciles within 0.03 of U(lo, hi)."""
    try:
        from scipy.stats import kstest
    except ImportError:
        deciles = np.quantile(r0, np.linspace(0.1, 0.9, 9))
        return bool(np.abs(deciles - (lo + (hi - lo) * np.linspace(0.1, 0.9, 9))).max() < 0.03)
    return kstest(r0, "uniform", args=(lo, hi - lo)).pvalue > 0.01


@pytest.mark.parametrize("scale", [(0.0, 1.0), (0.05, 0.48)])
def test_effective_r0_follows_the_configured_distribution(scale):
    cfg = CIMPairConfig(exemplar_scale=scale)
    r0 = _effective_r0(cfg)
    assert _follows_uniform(r0, *scale)
    assert abs(r0.mean() - sum(scale) / 2) < 0.02


def test_shrink_switch_biases_r0_down_and_redraw_keeps_large_crops_inside():
    shrunk = _effective_r0(CIMPairConfig(exemplar_fit="shrink"))
    assert not _follows_uniform(shrunk, 0.0, 1.0)
    assert 0.32 < shrunk.mean() < 0.38  # the measured 0.35 of issue 10
    # Large redrawn crops stay in the ranges, and inside the context although turned.
    rng = np.random.default_rng(3)
    cfg = CIMPairConfig(exemplar_scale=(0.9, 1.0))
    for _ in range(100):
        box = sample_exemplar_geometry(rng, 160, cfg)
        corners = box_corners(box)
        assert corners.min() >= -1e-6 and corners.max() <= 160 + 1e-6
        assert box.w * box.h / 160**2 >= 0.9 - 1e-9 and -45 <= box.angle <= 45
        assert 1 / 3 - 1e-9 <= box.h / box.w <= 3 + 1e-9


def test_exemplar_equals_context_region():
    ctx = torch.from_numpy(np.random.default_rng(1).integers(0, 256, (3, 64, 64), dtype=np.uint8))
    box = ExemplarBox(cx=10 + 16.0, cy=20 + 16.0, w=32.0, h=32.0, angle=0.0)
    z = cut_exemplar(ctx, box, 32)
    assert z.dtype == torch.uint8 and torch.equal(z, ctx[:, 20:52, 10:42])
    # A shrunken exemplar is an (antialiased) resize of that region: close in the mean.
    small = cut_exemplar(ctx.float(), box, 16)
    ref = torch.nn.functional.avg_pool2d(ctx[None, :, 20:52, 10:42].float(), 2)[0]
    torch.testing.assert_close(small, ref)


def test_rotated_exemplar_reads_the_rotated_region():
    # Context value = row index; a 90 deg box's columns run upwards in the context.
    rows = torch.arange(64, dtype=torch.uint8)[:, None].expand(64, 64)
    ctx = rows.expand(3, 64, 64).contiguous()
    z = cut_exemplar(ctx, ExemplarBox(32.0, 32.0, 20.0, 20.0, 90.0), 20)
    expected = (41 - torch.arange(20)).to(torch.uint8)[None, :].expand(20, 20)
    assert torch.equal(z[0], expected)
    # A white rotated box on black: the exemplar of that box is white inside.
    box = ExemplarBox(30.0, 34.0, 36.0, 14.0, 30.0)
    white = (gt_map(box, 64) * 255).expand(3, 64, 64).contiguous()
    z = cut_exemplar(white, box, 32)
    # Output rows step 14/32 px: 4 rows (1.75 px) and 2 columns (2.25 px) clear the rasterised
    # border for bilinear reads.
    assert (z[:, 4:-4, 2:-2] == 255).all()
    assert cut_exemplar(white, ExemplarBox(8.0, 8.0, 8.0, 8.0, 0.0), 16).max() == 0
