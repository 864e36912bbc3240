import numpy as np
import pytest
import torch

from correlearn.config import ConfigError, validate
from correlearn.data.cim_pairs import CIMPairConfig, build_cim_batch, make_cim_sample

SMALL = dict(context_size=64, exemplar_size=32, num_exemplars=3)


def _images(n=2):
    rng = np.random.default_rng(123)
    return [rng.integers(0, 256, (70 + 10 * i, 90, 3), dtype=np.uint8) for i in range(n)]


def test_defaults_are_the_papers():
    cfg = CIMPairConfig()
    assert (cfg.context_size, cfg.exemplar_size, cfg.num_exemplars) == (160, 64, 6)
    assert cfg.context_scale == (0.5, 1.0) and cfg.exemplar_scale == (0.0, 1.0)
    assert cfg.exemplar_fit == "redraw"
    assert cfg.exemplar_shape == pytest.approx((1 / 3, 3.0)) and cfg.rotation == (-45.0, 45.0)
    assert cfg.transform_exemplars and not cfg.transform_context
    aug = cfg.exemplar_aug
    assert (aug.flip_p, aug.jitter_p, aug.gray_p, aug.blur_p, aug.solarize_p) == (
        0.5,
        0.8,
        0.2,
        0.5,
        0.2,
    )
    with pytest.raises(ConfigError, match="unknown key"):
        validate(CIMPairConfig, {"exemplar_ratio": [1, 2]})


def test_sample_shapes_and_transforms_touch_exemplars_only():
    img = _images(1)[0]
    cfg = CIMPairConfig(**SMALL)
    out = make_cim_sample(img, np.random.default_rng(7), cfg)
    assert out["context"].shape == (3, 64, 64) and out["context"].dtype == torch.float32
    assert out["exemplars"].shape == (3, 3, 32, 32) and out["maps"].shape == (3, 64, 64)
    assert set(out["maps"].unique().tolist()) <= {0.0, 1.0}
    plain = make_cim_sample(
        img, np.random.default_rng(7), cfg.model_copy(update={"transform_exemplars": False})
    )
    assert torch.equal(out["context"], plain["context"]) and torch.equal(out["maps"], plain["maps"])
    assert not torch.equal(out["exemplars"], plain["exemplars"])
    # Context transformations: same crops and exemplars, altered context (jitter always on).
    aug = cfg.exemplar_aug.model_copy(update={"jitter_p": 1.0})
    sure = cfg.model_copy(update={"exemplar_aug": aug})
    ref = make_cim_sample(img, np.random.default_rng(7), sure)
    both = make_cim_sample(
        img, np.random.default_rng(7), sure.model_copy(update={"transform_context": True})
    )
    assert torch.equal(both["maps"], ref["maps"])
    assert torch.equal(both["exemplars"], ref["exemplars"])
    assert not torch.equal(both["context"], ref["context"])


def test_batches_are_reproducible_and_stacked():
    cfg = CIMPairConfig(**SMALL)
    a = build_cim_batch(_images(), np.random.default_rng(3), cfg)
    b = build_cim_batch(_images(), np.random.default_rng(3), cfg)
    c = build_cim_batch(_images(), np.random.default_rng(4), cfg)
    assert a["context"].shape == (2, 3, 64, 64) and a["exemplars"].shape == (2, 3, 3, 32, 32)
    assert a["maps"].shape == (2, 3, 64, 64)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["maps"], c["maps"])
