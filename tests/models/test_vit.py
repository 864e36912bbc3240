import pytest
import timm
import torch
from timm.models.vision_transformer import VisionTransformer

from correlearn.models.pos_embed import sincos_2d
from correlearn.models.vit import vit_small_patch16, vit_test_patch16
from correlearn.train.optim import param_groups


@pytest.fixture
def vit():
    torch.manual_seed(0)
    return vit_test_patch16().eval()


def test_attributes(vit):
    assert (vit.patch_size, vit.embed_dim, vit.out_dim, vit.dense_stride()) == (16, 64, 64, 16)
    assert vit_test_patch16(img_size=64).model.pos_embed.shape == (1, 1 + 16, 64)


def test_non_square_input_interpolates_pos_embed(vit):
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        dense = vit.dense(x)
        cls = vit(x)
        ref = vit.model.forward_features(x)
    assert dense.shape == (2, 64, 4, 6) and cls.shape == (2, 64)
    torch.testing.assert_close(cls, ref[:, 0])
    torch.testing.assert_close(dense, ref[:, 1:].transpose(1, 2).reshape(2, 64, 4, 6))
    # The 14x14 table really is resampled: the first patch's embedding changes with the grid.
    with torch.no_grad():
        pe_a = vit._pos_embeds(4, 6)[1]
        pe_b = vit._pos_embeds(14, 14)[1]
    assert pe_a.shape == (1, 24, 64)
    torch.testing.assert_close(pe_b, vit.model.pos_embed[:, 1:])


def test_forward_tokens_with_keep(vit):
    x = torch.randn(2, 3, 64, 96)  # 24 patches
    keep = torch.stack([torch.randperm(24)[:5] for _ in range(2)])
    with torch.no_grad():
        out = vit.forward_tokens(x, keep)
        full = vit.forward_tokens(x)
        all_kept = vit.forward_tokens(x, torch.arange(24).expand(2, -1))
        perm = torch.randperm(24)
        permuted = vit.forward_tokens(x, perm.expand(2, -1))
    assert out.shape == (2, 6, 64) and full.shape == (2, 25, 64)
    torch.testing.assert_close(all_kept, full, atol=1e-5, rtol=1e-5)
    # Position embeddings are added before the gather, so a permutation just permutes the outputs.
    torch.testing.assert_close(permuted[:, 1:], full[:, 1:][:, perm], atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError):
        vit.forward_tokens(x, torch.arange(5))


def test_dense_rejects_intermediate_layers(vit):
    with pytest.raises(ValueError):
        vit.dense(torch.randn(1, 3, 32, 32), "res4")


def test_export_loads_into_timm_with_identical_outputs(vit):
    sd = vit.export_state_dict()
    assert "pos_embed" in sd and "blocks.1.attn.qkv.weight" in sd
    ref = VisionTransformer(patch_size=16, embed_dim=64, depth=2, num_heads=2, num_classes=10)
    res = ref.load_state_dict(sd, strict=False)
    assert sorted(res.missing_keys) == ["head.bias", "head.weight"] and not res.unexpected_keys
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(vit(x), ref.forward_head(ref.forward_features(x), True))


def test_vit_small_export_keys_match_timm():
    torch.manual_seed(0)
    sd = vit_small_patch16().export_state_dict()
    ref = timm.create_model("vit_small_patch16_224", pretrained=False)
    res = ref.load_state_dict(sd, strict=False)
    assert sorted(res.missing_keys) == ["head.bias", "head.weight"] and not res.unexpected_keys


def test_sincos_pos_embed_is_mae_table_and_frozen():
    torch.manual_seed(0)
    vit = vit_test_patch16(img_size=64, pos_embed="sincos")
    pe = vit.model.pos_embed
    assert not pe.requires_grad and vit.pos_embed_kind == "sincos"
    torch.testing.assert_close(pe[0, 0], torch.zeros(64))  # CLS position, MAE cls_token=True
    torch.testing.assert_close(pe[0, 1:], sincos_2d(64, 4, 4))
    names = [n for g in param_groups(vit.named_parameters(), 0.05, True) for n in g["names"]]
    assert "model.pos_embed" not in names and "model.cls_token" in names
    learned = vit_test_patch16(img_size=64)
    assert learned.model.pos_embed.requires_grad
    assert not torch.allclose(learned.model.pos_embed[0, 1:], sincos_2d(64, 4, 4))
    with pytest.raises(ValueError, match="pos_embed"):
        vit.set_pos_embed("rope")


def test_vit_tiny_patch8_is_deit_tiny_widths_at_patch_8():
    from correlearn.models import build_backbone

    net = build_backbone("vit_tiny_patch8", img_size=64, pos_embed="sincos")
    assert net.out_dim == 192 and len(net.model.blocks) == 12
    assert net.model.patch_embed.patch_size == (8, 8)
    assert not net.model.pos_embed.requires_grad  # MAE's fixed table, as SiamMAE's encoder
