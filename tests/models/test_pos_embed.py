import math

import pytest
import torch

from correlearn.models.pos_embed import sincos_2d


def _mae_channels(row: int, col: int) -> list[float]:
    # D = 8: omega = 10000^(-i / 2), i = 0, 1 -> (1, 0.01); MAE puts the column first.
    return [
        math.sin(col),
        math.sin(col * 0.01),
        math.cos(col),
        math.cos(col * 0.01),
        math.sin(row),
        math.sin(row * 0.01),
        math.cos(row),
        math.cos(row * 0.01),
    ]


def test_hand_computed_small_grid_in_mae_channel_order():
    pe = sincos_2d(8, 2, 3)
    assert pe.shape == (6, 8) and pe.dtype == torch.float32
    for token, (row, col) in enumerate((r, c) for r in range(2) for c in range(3)):
        torch.testing.assert_close(pe[token], torch.tensor(_mae_channels(row, col)))
    # Token 2 is (row 0, col 2): the column half moves, the row half is (sin 0, cos 0).
    assert pe[2, 0] == pytest.approx(math.sin(2)) and pe[2, 4:].tolist() == [0.0, 0.0, 1.0, 1.0]


def test_distinct_positions_and_bad_width():
    pe = sincos_2d(16, 3, 5)
    assert torch.cdist(pe, pe).add(torch.eye(15) * 1e3).min() > 0.1
    with pytest.raises(ValueError, match="dim % 4"):
        sincos_2d(6, 2, 2)
