import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from correlearn.eval.davis_metrics import read_mask
from correlearn.eval.features import IMAGENET_MEAN, IMAGENET_STD
from correlearn.eval.label_propagation import (
    LabelPropConfig,
    propagate_labels,
    propagate_sequence,
    write_davis_masks,
)

H, W = 12, 16


def position_code(h, w):
    """(1, h*w, h, w): channel c is 1 at cell (c // w, c % w) only."""
    return torch.eye(h * w).reshape(1, h * w, h, w)


def counting_fn(fn):
    calls = []

    def wrapped(x):
        calls.append(tuple(x.shape))
        return fn(x)

    return wrapped, calls


def two_objects():
    m = np.zeros((H, W), dtype=np.int64)
    m[2:6, 3:7] = 1
    m[7:10, 9:14] = 3  # ids need not be contiguous
    return m


def small_cfg(**kw):
    return LabelPropConfig(short_side=None, size_multiple=1, **kw)


def test_position_code_recovers_mask_and_features_once():
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (H, W, 3), dtype=np.uint8) for _ in range(6)]
    fn, calls = counting_fn(lambda x: position_code(H, W).expand(len(x), -1, -1, -1))
    mask = two_objects()
    cfg = small_cfg(context_frames=3, topk=5, radius=2, feature_batch=4)
    preds = propagate_sequence(fn, frames, mask, cfg)
    assert calls == [(4, 3, H, W), (2, 3, H, W)]  # each frame's features exactly once, batched
    assert len(preds) == len(frames)
    for p in preds:
        np.testing.assert_array_equal(p, mask)


def encode_ids(ids):
    """Frame whose R, G channels spell a per-pixel id (for a content-following feature)."""
    return np.stack([ids % 256, ids // 256, np.zeros_like(ids)], axis=-1).astype(np.uint8)


def decode_fn(n_ids):
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)

    def fn(x):
        rgb = ((x * std + mean) * 255).round().long()
        ids = rgb[:, 0] + 256 * rgb[:, 1]  # (1, h, w)
        return F.one_hot(ids, n_ids).permute(0, 3, 1, 2).float()

    return fn


def test_labels_follow_moving_content():
    # Frame t is the texture of frame 0 rolled t px right; features identify each texture
    # pixel, so the nearest context cell is where that pixel was one frame earlier.
    base = np.arange(H * W).reshape(H, W)
    frames = [encode_ids(np.roll(base, t, axis=1)) for t in range(6)]
    mask = np.zeros((H, W), dtype=np.int64)
    mask[3:8, 2:6] = 1
    preds = propagate_sequence(
        decode_fn(H * W), frames, mask, small_cfg(context_frames=2, topk=3, radius=2)
    )
    for t, p in enumerate(preds):
        np.testing.assert_array_equal(p, np.roll(mask, t, axis=1))


def single_match_case(src, dst, h=9, w=9):
    """Target cell ``dst`` has the feature of context cell ``src``, which alone has label 1."""
    ctx = position_code(h, w)
    target = position_code(h, w)[0].clone()
    target[:, dst[0], dst[1]] = ctx[0, :, src[0], src[1]]
    labels = torch.zeros(1, 2, h, w)
    labels[0, 0] = 1
    labels[0, :, src[0], src[1]] = torch.tensor([0.0, 1.0])
    return target, ctx, labels


@pytest.mark.parametrize(
    ("src", "window", "radius", "reaches"),
    [
        ((4, 7), "square", 3, True),  # Chebyshev 3 <= 3
        ((4, 7), "square", 2, False),
        ((4, 7), "circle", 3, False),  # Euclidean 3 is not < 3 (VFS/CRW strict)
        ((4, 7), "circle", 3.5, True),
        ((7, 7), "square", 3, True),  # diagonal: Chebyshev 3
        ((7, 7), "circle", 4, False),  # Euclidean 4.24
        ((7, 7), "circle", 4.3, True),
    ],
)
def test_radius_is_respected(src, window, radius, reaches):
    target, ctx, labels = single_match_case(src, (4, 4))
    for tile in (1, 4, 9):
        soft = propagate_labels(target, ctx, labels, radius, 1, 0.07, window=window, tile=tile)
        assert soft[1, 4, 4].item() == (1.0 if reaches else 0.0)


def test_unrestricted_first_frame_reaches_far():
    target, ctx, labels = single_match_case((0, 8), (8, 0))
    assert propagate_labels(target, ctx, labels, 1, 1, 0.07)[1, 8, 0] == 0.0
    soft = propagate_labels(target, ctx, labels, 1, 1, 0.07, restrict_first=False)
    assert soft[1, 8, 0] == 1.0


def test_topk_weights_by_hand():
    # One row of 3 cells. Target cell 0 has feature (1, 0); context cells have features
    # (1, 0), (0.6, 0.8), (0, 1) -> cosines 1, 0.6, 0 and labels [1,0], [0,1], [0,1].
    target = torch.tensor([[[1.0, 1.0, 1.0]], [[0.0, 0.0, 0.0]]])  # (C=2, 1, 3)
    ctx = torch.tensor([[[[1.0, 0.6, 0.0]], [[0.0, 0.8, 1.0]]]])  # (T=1, 2, 1, 3)
    labels = torch.tensor([[[[1.0, 0.0, 0.0]], [[0.0, 1.0, 1.0]]]])  # (1, K=2, 1, 3)
    # k=1 copies the nearest neighbour's label.
    soft = propagate_labels(target, ctx, labels, radius=10, topk=1, temperature=0.5)
    assert soft[:, 0, 0].tolist() == [1.0, 0.0]
    # k=2, T=0.5: weights softmax([1, 0.6] / 0.5) = [1, e^-0.8] / (1 + e^-0.8).
    soft = propagate_labels(target, ctx, labels, radius=10, topk=2, temperature=0.5)
    w0 = 1 / (1 + math.exp(-0.8))
    assert soft[:, 0, 0].tolist() == pytest.approx([w0, 1 - w0], abs=1e-6)
    # k=3: softmax([2, 1.2, 0]); label 1 gets the weight of cells 1 and 2.
    soft = propagate_labels(target, ctx, labels, radius=10, topk=3, temperature=0.5)
    z = math.exp(2) + math.exp(1.2) + 1
    assert soft[:, 0, 0].tolist() == pytest.approx([math.exp(2) / z, (math.exp(1.2) + 1) / z])


def dense_reference(target, ctx, labels, radius, topk, temperature, window, restrict_first):
    """Untiled propagation with a full (hw, T*hw) affinity, written from the protocol."""
    c, h, w = target.shape
    t, k = labels.shape[:2]
    q = F.normalize(target.reshape(c, -1), dim=0)
    keys = F.normalize(ctx.reshape(t, c, -1), dim=1)
    aff = torch.einsum("cn,tcm->ntm", q, keys)
    yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    dy = yy.reshape(-1, 1) - yy.reshape(1, -1)
    dx = xx.reshape(-1, 1) - xx.reshape(1, -1)
    if window == "square":
        inside = torch.maximum(dy.abs(), dx.abs()) <= radius
    else:
        inside = (dy**2 + dx**2).float().sqrt() < radius
    mask = inside[:, None, :].repeat(1, t, 1)
    if not restrict_first:
        mask[:, 0] = True
    aff = aff.masked_fill(~mask, float("-inf")).reshape(h * w, -1)
    top, idx = aff.topk(topk, dim=1)
    wts = torch.softmax(top / temperature, dim=1)
    flat = labels.reshape(t, k, -1).permute(1, 0, 2).reshape(k, -1)
    return (flat[:, idx] * wts).sum(-1).reshape(k, h, w)


@pytest.mark.parametrize("window", ["circle", "square"])
@pytest.mark.parametrize("restrict_first", [True, False])
def test_tiled_matches_dense_reference(window, restrict_first):
    g = torch.Generator().manual_seed(0)
    target = torch.randn(8, 11, 13, generator=g)
    ctx = torch.randn(4, 8, 11, 13, generator=g)
    labels = torch.softmax(torch.randn(4, 3, 11, 13, generator=g), dim=1)
    ref = dense_reference(target, ctx, labels, 3.5, 6, 0.1, window, restrict_first)
    for tile in (1, 5, 8, 32, (2, 5), (7, 3)):
        out = propagate_labels(
            target,
            ctx,
            labels,
            3.5,
            6,
            0.1,
            window=window,
            restrict_first=restrict_first,
            tile=tile,
        )
        torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)


def test_presets():
    vfs = LabelPropConfig.preset("vfs_resnet")
    assert (vfs.context_frames, vfs.topk, vfs.temperature, vfs.radius) == (20, 10, 0.07, 12)
    assert vfs.layer == "res4" and vfs.strides == (1, 2, 1, 1) and vfs.short_side == 480
    assert (vfs.context, vfs.first_labels, vfs.restrict_first) == ("vfs", "nearest", True)
    dino = LabelPropConfig.preset("dino_vit")
    assert (dino.context_frames, dino.topk, dino.temperature, dino.radius) == (7, 5, 0.1, 12)
    assert (dino.window, dino.context, dino.minmax_normalize) == ("square", "queue", True)
    siam = LabelPropConfig.preset("siammae_vit", short_side=240)
    assert (siam.context_frames, siam.topk, siam.radius, siam.short_side) == (20, 7, 20, 240)
    assert (siam.context, siam.first_labels, siam.restrict_first) == ("crw", "bilinear", False)
    assert not siam.minmax_normalize
    with pytest.raises(ValueError):
        LabelPropConfig(context="dino")
    with pytest.raises(ValueError, match="unknown"):
        LabelPropConfig.preset("nope")
    with pytest.raises(ValueError):
        LabelPropConfig(topk=0)


def test_write_davis_masks_roundtrip(tmp_path):
    masks = [two_objects(), np.zeros((H, W), dtype=np.int64)]
    paths = write_davis_masks(tmp_path, "seq", masks)
    assert [p.name for p in paths] == ["00000.png", "00001.png"]
    with Image.open(paths[0]) as im:
        assert im.mode == "P"
        assert im.getpalette()[:9] == [0, 0, 0, 128, 0, 0, 0, 128, 0]
    for p, m in zip(paths, masks, strict=True):
        np.testing.assert_array_equal(read_mask(p), m)
