"""Reduced-size JPEG decode: same random stream, same crop geometry, close pixels."""

import cv2
import numpy as np
import pytest
import torch

from correlearn.data.augment import random_resized_crop, rrc_params
from correlearn.data.decode import (
    EncodedImage,
    dct_scale,
    decode_image,
    decode_random_resized_crop,
    decode_scaled,
    image_size,
)
from correlearn.data.readers import ShardedImages

RECT = (173, 291, 259, 437)  # rows [173, 291), cols [259, 437) of the bright rectangle


def _scene(h=480, w=704, gradient=True):
    """JPEG bytes of a background (a gradient or flat grey) with one bright rectangle."""
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([xx * 200 // w, yy * 200 // h, (xx + yy) * 100 // (w + h)], -1).astype(np.uint8)
    if not gradient:
        img[:] = 60
    r0, r1, c0, c1 = RECT
    img[r0:r1, c0:c1] = 255
    ok, enc = cv2.imencode(
        ".jpg", cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95]
    )
    assert ok
    return enc.tobytes()


def _centroid(crop: torch.Tensor) -> np.ndarray:
    """Centroid of the brightness above the flat background, (row, col) in pixel indices.

    A symmetric, normalised resampling filter keeps it where the geometry puts it."""
    wgt = (crop.float().mean(0) - 60).clamp(min=0).numpy()
    ys, xs = np.mgrid[0 : wgt.shape[0], 0 : wgt.shape[1]]
    return np.array([(ys * wgt).sum(), (xs * wgt).sum()]) / wgt.sum()


def _expected(box, size):
    """Where the rectangle's centre lands in the output of crop ``box`` (pixel indices)."""
    top, left, h, w = box
    r0, r1, c0, c1 = RECT
    return np.array(
        [((r0 + r1) / 2 - top) * size / h - 0.5, ((c0 + c1) / 2 - left) * size / w - 0.5]
    )


def test_dct_scale_keeps_the_crop_at_least_the_output_size():
    assert dct_scale((480, 854), (224, 224)) == 2
    assert dct_scale((447, 900), (224, 224)) == 1  # 447 / 2 < 224
    assert dct_scale((480, 854), (60, 60)) == 8
    assert dct_scale((480, 854), (60, 60), max_scale=2) == 2


def test_scaled_decode_has_libjpeg_sizes():
    data = _scene(480, 701)
    assert image_size(data) == (480, 701)
    assert decode_scaled(data, 4).shape == (120, 176, 3)  # ceil(701 / 4)


@pytest.mark.parametrize("size", [64, 80])
def test_reduced_decode_keeps_the_crop_geometry(size):
    data = _scene(gradient=False)
    full = torch.from_numpy(decode_image(data)).permute(2, 0, 1)
    r0, r1, c0, c1 = RECT
    scales, err_reduced, err_full = [], [], []
    for seed in range(60):
        a, b = np.random.default_rng(seed), np.random.default_rng(seed)
        box = rrc_params(np.random.default_rng(seed), 480, 704, (0.2, 1.0))
        crop, s = decode_random_resized_crop(data, a, size, scale=(0.2, 1.0))
        ref = random_resized_crop(full, b, size, scale=(0.2, 1.0))
        assert a.bit_generator.state == b.bit_generator.state  # the same draws
        assert crop.shape == ref.shape == (3, size, size) and crop.dtype == torch.uint8
        scales.append(s)
        if s == 1:
            assert torch.equal(crop, ref)  # the unchanged full-size path
            continue
        top, left, h, w = box
        inside = (
            top + 8 * s < r0
            and r1 < top + h - 8 * s
            and left + 8 * s < c0
            and c1 < left + w - 8 * s
        )
        if inside:
            want = _expected(box, size)
            err_reduced.append(np.abs(_centroid(crop) - want).max())
            err_full.append(np.abs(_centroid(ref) - want).max())
        assert (crop.float() - ref.float()).abs().mean() < 6.0
    assert {2, 4} <= set(scales) and len(err_reduced) >= 5
    # Measured: mean 0.06, max 0.11 output px (JPEG blocks and chroma); the same crop moved by a
    # quarter of a reduced pixel gives mean 0.17, by half a pixel 0.33.
    assert np.mean(err_reduced) < 0.09 and max(err_reduced) < 0.15, err_reduced
    assert np.mean(err_full) < 0.09, err_full


def test_non_jpeg_is_decoded_at_full_size():
    img = np.random.default_rng(0).integers(0, 256, (300, 400, 3), dtype=np.uint8)
    data = cv2.imencode(".png", img)[1].tobytes()
    crop, s = decode_random_resized_crop(data, np.random.default_rng(0), 32)
    ref = random_resized_crop(
        torch.from_numpy(img[..., ::-1].copy()).permute(2, 0, 1), np.random.default_rng(0), 32
    )
    assert s == 1 and torch.equal(crop, ref)


def test_views_of_one_image_share_its_decodes():
    # BYOL draws two views of one image: after a full-size view, the other takes the full path.
    data = _scene()
    img = EncodedImage(data)
    assert img.shape == (480, 704, 3)
    a, b = np.random.default_rng(3), np.random.default_rng(3)
    full = torch.from_numpy(decode_image(data)).permute(2, 0, 1)
    v1, s1 = img.random_resized_crop(a, 300, scale=(0.9, 1.0))  # too large to reduce
    v2, s2 = img.random_resized_crop(a, 32, scale=(0.9, 1.0))  # could reduce by 8
    assert (s1, s2) == (1, 1)
    assert torch.equal(v1, random_resized_crop(full, b, 300, scale=(0.9, 1.0)))
    assert torch.equal(v2, random_resized_crop(full, b, 32, scale=(0.9, 1.0)))
    fresh = EncodedImage(data)
    assert fresh.random_resized_crop(np.random.default_rng(3), 32, scale=(0.9, 1.0))[1] == 8


def test_lazy_reader_gives_encoded_images(davis_image_shards):
    lazy = ShardedImages(davis_image_shards.out_dir, decode="lazy")[4]["image"]
    plain = ShardedImages(davis_image_shards.out_dir)[4]["image"]
    assert isinstance(lazy, EncodedImage) and lazy.shape == plain.shape == (480, 854, 3)
    np.testing.assert_array_equal(lazy.decode(), plain)
