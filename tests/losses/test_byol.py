import torch

from correlearn.losses.byol import byol_loss, symmetric_byol_loss


def test_byol_loss_known_values():
    e1, e2 = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 3.0]])
    assert byol_loss(e1, 5 * e1).item() == 0.0
    assert abs(byol_loss(e1, -2 * e1).item() - 4.0) < 1e-6
    assert abs(byol_loss(e1, e2).item() - 2.0) < 1e-6
    # Batch mean: (0 + 4) / 2.
    two = byol_loss(torch.cat([e1, e1]), torch.cat([e1, -e1]))
    assert abs(two.item() - 2.0) < 1e-6


def test_byol_loss_stops_gradient_into_target():
    p = torch.randn(4, 8, requires_grad=True)
    z = torch.randn(4, 8, requires_grad=True)
    byol_loss(p, z).backward()
    assert p.grad is not None and z.grad is None


def test_symmetric_byol_loss_swaps_the_views():
    p1, p2, z1, z2 = torch.randn(4, 4, 8).unbind(0)
    sym = symmetric_byol_loss(p1, p2, z1, z2)
    torch.testing.assert_close(sym, byol_loss(p1, z2) + byol_loss(p2, z1))
    assert not torch.allclose(sym, byol_loss(p1, z1) + byol_loss(p2, z2))
