import torch

from correlearn.losses.mae import masked_mse, norm_pix


def test_masked_mse_counts_masked_patches_only():
    pred, target = torch.randn(2, 6, 12), torch.randn(2, 6, 12)
    mask = torch.tensor([[1.0, 0, 1, 0, 0, 1], [0, 1, 1, 1, 0, 0]])
    loss = masked_mse(pred, target, mask)
    expected = ((pred - target) ** 2).mean(-1)[mask.bool()].mean()
    torch.testing.assert_close(loss, expected)
    visible = target.clone()
    visible[mask == 0] += 5.0
    torch.testing.assert_close(masked_mse(pred, visible, mask), loss)
    hidden = target.clone()
    hidden[0, 2] += 1.0
    assert masked_mse(pred, hidden, mask) != loss


def test_norm_pix_normalises_each_patch():
    x = torch.randn(2, 5, 48) * 3 + 7
    y = norm_pix(x)
    torch.testing.assert_close(y.mean(-1), torch.zeros(2, 5), atol=1e-5, rtol=0)
    torch.testing.assert_close(y.var(-1), torch.ones(2, 5), atol=1e-4, rtol=0)
    torch.testing.assert_close(norm_pix(2 * x + 1), y, atol=1e-5, rtol=1e-5)
