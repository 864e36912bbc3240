import pytest
import torch

from correlearn.losses.byol import byol_loss
from correlearn.losses.simsiam import simsiam_loss, simsiam_pair_loss
from correlearn.methods.vfs import vfs_pairs


def test_simsiam_loss_is_half_the_symmetric_byol_loss():
    p1, p2, z1, z2 = torch.randn(4, 4, 8).unbind(0)
    expected = (byol_loss(p1, z2) + byol_loss(p2, z1)) / 2
    torch.testing.assert_close(simsiam_loss(p1, p2, z1, z2), expected)


def test_simsiam_loss_known_values_and_ref_code_roll_equivalence():
    torch.manual_seed(0)
    z = torch.randn(3, 8, 16)
    pairs = vfs_pairs(8, "halves")
    assert simsiam_pair_loss(z, z.clone(), [(0, 0)]).item() == pytest.approx(0.0, abs=1e-6)
    assert simsiam_pair_loss(-z, z, [(1, 1)]).item() == pytest.approx(4.0, abs=1e-5)
    p = torch.randn(3, 8, 16)
    # The ref code sums the loss over clip_len rolls of the second half, each weighted 1/clip_len.
    ref = sum(
        simsiam_pair_loss(p, z, [(j, 4 + (j - s) % 4) for j in range(4)]) / 4 for s in range(4)
    )
    torch.testing.assert_close(simsiam_pair_loss(p, z, pairs), ref)
