import torch

from correlearn.models.patches import patchify, random_masking, unpatchify


def test_random_masking_counts_and_reproducibility():
    for n, masked in ((196, 187), (36, 35), (49, 47)):  # MAE: N - int(N * 0.05) masked
        keep, mask, restore = random_masking(3, n, 0.95, torch.Generator().manual_seed(0))
        assert (mask.sum(1) == masked).all() and keep.shape == (3, n - masked)
        assert (mask.gather(1, keep) == 0).all()
        assert torch.equal(restore.argsort(1)[:, : n - masked], keep)
    a = random_masking(2, 196, 0.95, torch.Generator().manual_seed(1))
    b = random_masking(2, 196, 0.95, torch.Generator().manual_seed(1))
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert random_masking(2, 10, 0.9)[0].shape == (2, 1)  # float error in 1 - 0.9 keeps one


def test_patchify_roundtrip():
    x = torch.randn(2, 3, 32, 48)
    patches = patchify(x, 16)
    assert patches.shape == (2, 6, 16 * 16 * 3)
    assert torch.equal(patches[0, 1].view(16, 16, 3), x[0, :, :16, 16:32].permute(1, 2, 0))
    assert torch.equal(unpatchify(patches, 16, 2, 3), x)
