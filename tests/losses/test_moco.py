import math

import torch
import torch.nn.functional as F

from correlearn.losses.moco import info_nce, moco_pair_loss


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


def test_moco_pair_loss_averages_both_directions():
    torch.manual_seed(0)
    q, k = torch.randn(2, 4, 8), F.normalize(torch.randn(2, 4, 8), dim=-1)
    queue = F.normalize(torch.randn(6, 8), dim=1)
    loss, acc = moco_pair_loss(q, k, queue, [(0, 2), (1, 3)], temperature=0.5)
    a, b = torch.tensor([0, 1]), torch.tensor([2, 3])
    l1, lg1 = info_nce(q[:, a].flatten(0, 1), k[:, b].flatten(0, 1), queue, 0.5)
    l2, lg2 = info_nce(q[:, b].flatten(0, 1), k[:, a].flatten(0, 1), queue, 0.5)
    torch.testing.assert_close(loss, (l1 + l2) / 2)
    assert acc == (torch.cat([lg1, lg2]).argmax(1) == 0).float().mean()
    # Queries equal to their partner's key, negatives orthogonal: the positive always wins.
    eye = torch.eye(8)
    keys = eye[:4].expand(2, 4, 8)
    _, perfect = moco_pair_loss(keys[:, [2, 3, 0, 1]], keys, eye[4:], [(0, 2), (1, 3)])
    assert perfect == 1.0
