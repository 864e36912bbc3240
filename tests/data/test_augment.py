import numpy as np
import pytest
import torch

from correlearn.data import augment as A


def _image(seed=0, h=80, w=64):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_same_seed_same_views_different_seed_different():
    img = _image()
    a1, a2 = A.byol_views(img, np.random.default_rng(1), size=32)
    b1, b2 = A.byol_views(img, np.random.default_rng(1), size=32)
    c1, c2 = A.byol_views(img, np.random.default_rng(2), size=32)
    assert a1.shape == a2.shape == (3, 32, 32) and a1.dtype == torch.uint8
    assert torch.equal(a1, b1) and torch.equal(a2, b2)
    assert not torch.equal(a1, c1) or not torch.equal(a2, c2)


def test_global_rngs_untouched():
    torch.manual_seed(123)
    np.random.seed(123)
    t_state, n_state = torch.get_rng_state(), np.random.get_state()[1].copy()
    A.byol_views(_image(), np.random.default_rng(0), size=32)
    assert torch.equal(torch.get_rng_state(), t_state)
    assert np.array_equal(np.random.get_state()[1], n_state)


def test_rrc_params_inside_image_and_in_scale_range():
    rng = np.random.default_rng(0)
    H, W, scale = 120, 90, (0.2, 0.6)
    for _ in range(300):
        top, left, h, w = A.rrc_params(rng, H, W, scale, (3 / 4, 4 / 3))
        assert 0 <= top and top + h <= H and 0 <= left and left + w <= W and h > 0 and w > 0
        # Rounding h and w to integers moves the area by at most ~(h + w) / 2 pixels.
        slack = (h + w) / (H * W)
        assert scale[0] - slack <= h * w / (H * W) <= scale[1] + slack
        assert 3 / 4 - 0.05 <= w / h <= 4 / 3 + 0.05


def test_rrc_fallback_is_centre_crop():
    # An area above the image's is impossible: after 10 tries torchvision takes a centre crop.
    assert A.rrc_params(np.random.default_rng(0), 100, 40, (2.0, 3.0), (3 / 4, 4 / 3)) == (
        (100 - 53) // 2,
        0,
        53,
        40,
    )


def test_pixel_ops():
    rng = np.random.default_rng(0)
    img = torch.tensor(_image(h=16, w=16)).permute(2, 0, 1).contiguous()
    assert torch.equal(A.hflip(img, 1.0, rng), img.flip(-1))
    assert torch.equal(A.hflip(img, 0.0, rng), img)
    assert torch.equal(A.color_jitter(img, rng, p=0.0), img)
    assert not torch.equal(A.color_jitter(img, rng, p=1.0), img)
    gray = A.grayscale(img, rng, p=1.0)
    assert torch.equal(gray[0], gray[1]) and torch.equal(gray[1], gray[2])
    sol = A.solarize(torch.tensor([[[0, 127, 128, 255]]] * 3, dtype=torch.uint8), rng, p=1.0)
    assert sol[0, 0].tolist() == [0, 127, 127, 0]
    blurred = A.gaussian_blur(img, rng, p=1.0, sigma=(2.0, 2.0))
    assert blurred.shape == img.shape and blurred.float().std() < img.float().std()
    assert A.blur_kernel_size(224) == 23 and A.blur_kernel_size(96) == 9


def test_random_resized_crop_size_and_normalize_roundtrip():
    img = torch.tensor(_image()).permute(2, 0, 1)
    out = A.random_resized_crop(img, np.random.default_rng(0), 24)
    assert out.shape == (3, 24, 24) and out.dtype == torch.uint8
    x = A.normalize(out)
    assert x.dtype == torch.float32
    assert torch.equal(A.denormalize(x), out)


def test_view_configs_follow_byol_table6():
    assert (A.BYOL_VIEW1.blur_p, A.BYOL_VIEW1.solarize_p) == (1.0, 0.0)
    assert (A.BYOL_VIEW2.blur_p, A.BYOL_VIEW2.solarize_p) == (0.1, 0.2)
    v = A.BYOL_VIEW1
    assert (v.brightness, v.contrast, v.saturation, v.hue, v.jitter_p) == (0.4, 0.4, 0.2, 0.1, 0.8)
    assert (v.gray_p, v.scale, v.flip_p) == (0.2, (0.08, 1.0), 0.5)
    with pytest.raises(ValueError):
        A.ViewAug(blurr_p=0.5)


def test_to_chw_and_to_tchw_move_channels_first():
    img = _image(h=5, w=7)
    chw = A.to_chw(img)
    assert chw.shape == (3, 5, 7) and torch.equal(chw.permute(1, 2, 0), torch.from_numpy(img))
    assert A.to_chw(img[..., 0]).shape == (3, 5, 7)  # grayscale is replicated
    clip = np.stack([_image(seed=s, h=5, w=7) for s in range(4)])
    tchw = A.to_tchw(clip)
    assert tchw.shape == (4, 3, 5, 7) and tchw.dtype == torch.uint8
    assert torch.equal(tchw[2], A.to_chw(clip[2]))
    assert A.to_tchw(tchw) is tchw and A.to_chw(chw) is chw
