import torch
from torch import nn

from correlearn.eval.features import dense_feature_fn


class Conv(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Conv2d(3, 16, 3, stride=2, padding=1), nn.BatchNorm2d(16))

    def dense(self, x, layer=None):
        return self.net(x)


def test_dense_features_fp32_channels_last_and_batched_agree():
    x = torch.randn(3, 3, 20, 24, generator=torch.Generator().manual_seed(1))
    ref = dense_feature_fn(Conv())(x)
    assert ref.dtype == torch.float32 and ref.shape == (3, 16, 10, 12)
    torch.testing.assert_close(ref.norm(dim=1), torch.ones(3, 10, 12))
    # bf16 is a CUDA autocast option: on CPU the features stay exactly fp32.
    assert torch.equal(dense_feature_fn(Conv(), precision="bf16")(x), ref)
    cl = dense_feature_fn(Conv(), channels_last=True)
    torch.testing.assert_close(cl(x), ref, rtol=1e-5, atol=1e-6)
    single = torch.cat([dense_feature_fn(Conv())(x[i : i + 1]) for i in range(3)])
    torch.testing.assert_close(single, ref, rtol=1e-5, atol=1e-6)
