import math

import torch
import torch.nn.functional as F

from correlearn.methods.losses import byol_loss, info_nce, simsiam_loss, symmetric_byol_loss


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


def test_symmetric_and_simsiam():
    p1, p2, z1, z2 = torch.randn(4, 4, 8).unbind(0)
    sym = symmetric_byol_loss(p1, p2, z1, z2)
    torch.testing.assert_close(sym, byol_loss(p1, z2) + byol_loss(p2, z1))
    torch.testing.assert_close(simsiam_loss(p1, p2, z1, z2), sym / 2)


def test_info_nce():
    q = torch.randn(3, 8, requires_grad=True)
    k = torch.randn(3, 8, requires_grad=True)
    queue = F.normalize(torch.randn(5, 8), dim=1)
    loss, logits = info_nce(q, k, queue, temperature=0.2)
    assert logits.shape == (3, 6)
    qn, kn = F.normalize(q, dim=1), F.normalize(k, dim=1)
    pos = (qn * kn).sum(1) / 0.2
    neg = qn @ queue.t() / 0.2
    expected = (torch.logsumexp(torch.cat([pos[:, None], neg], 1), 1) - pos).mean()
    torch.testing.assert_close(loss, expected)
    loss.backward()
    assert k.grad is None and q.grad is not None


def test_info_nce_perfect_match_with_orthogonal_negatives():
    q = torch.eye(4)[:1]
    loss, _ = info_nce(q, q, torch.eye(4)[1:], temperature=1.0)
    expected = -math.log(math.e / (math.e + 3))
    assert abs(loss.item() - expected) < 1e-6
