"""CropMAE: the reference's defaults, two crops of one image, SiamMAE's training step and metric,
the label-propagation preset, the demo sections, and the training stage end to end at tiny sizes."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision.transforms.v2.functional as F
import yaml

from correlearn.config import ConfigError, validate
from correlearn.data.augment import normalize
from correlearn.eval.dense_setup import choose_preset
from correlearn.methods.cropmae import CropMAE, CropMAEConfig, build_cropmae_batch, crop_pair
from correlearn.pipeline import Pipeline
from correlearn.pretrain import METHODS
from correlearn.pretrain import data as D
from correlearn.pretrain.configs import PretrainCropMAEConfig
from correlearn.workspace import get_workspace
from stages import STAGES

REPO = Path(__file__).resolve().parents[2]
TINY = dict(backbone="vit_test_patch16", decoder_dim=32, decoder_depth=1, decoder_heads=4)


def _tiny(**kw) -> CropMAEConfig:
    return CropMAEConfig(**{**TINY, "image_size": 64, **kw})


def test_defaults_are_the_references():
    """scripts/train_cropmae_in.sh, misc/util.py and models/components of the reference code."""
    cfg = CropMAEConfig()
    assert (cfg.backbone, cfg.pos_embed, cfg.image_size, cfg.crops) == (
        "vit_small_patch16",
        "sincos",
        224,
        "global_to_local",
    )
    assert (cfg.global_scale, cfg.local_scale, cfg.flip_p) == ((0.1, 1.0), (0.3, 0.6), 0.5)
    assert cfg.global_ratio == cfg.local_ratio == (3 / 4, 4 / 3)
    assert (cfg.mask_ratio, cfg.decoder, cfg.norm_pix_loss) == (0.985, "cross_self", True)
    assert (cfg.decoder_dim, cfg.decoder_depth, cfg.decoder_heads) == (256, 4, 8)
    assert cfg.decoder_dim * cfg.decoder_mlp_ratio == 2048  # DecoderBlock dim_feedforward
    pc = PretrainCropMAEConfig()
    assert (pc.train.epochs, pc.train.batch_size) == (400, 2048)
    o = pc.optim
    assert (o.name, o.base_lr, o.lr_scaling, o.betas, o.weight_decay) == (
        "adamw",
        1e-4,
        "linear_256",
        (0.9, 0.95),
        0.05,
    )
    assert (o.warmup_epochs, o.min_lr, o.clip_grad, o.exclude_bias_norm) == (20, 0.0, None, True)
    spec = METHODS["cropmae"]
    assert (spec.stage, spec.config, spec.data, spec.batch) == (
        "pretrain_cropmae",
        PretrainCropMAEConfig,
        D.IMAGES,
        D.cropmae_batch,
    )
    assert spec.data.inputs == METHODS["byol"].data.inputs == {"shards": "image_shards"}
    assert spec.heldout is D.cropmae_heldout
    with pytest.raises(ConfigError, match="local_scale"):
        validate(CropMAEConfig, {"local_scale": [0.6, 0.3]})
    with pytest.raises(ConfigError, match="unknown key"):
        validate(CropMAEConfig, {"sampler": {"kind": "gap_pair"}})


def test_two_crops_come_from_one_image_at_the_configured_scales():
    """Hand-checkable: a square 100 px image, the global crop the whole of it (scale 1, ratio 1),
    the local crop a quarter of the 64 px global crop: a 32 x 32 box, cut from the global crop."""
    img = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (3, 100, 100), dtype=np.uint8))
    cfg = _tiny(
        global_scale=(1, 1), global_ratio=(1, 1), local_scale=(0.25, 0.25), local_ratio=(1, 1)
    )
    first, second, g_box, l_box = crop_pair(img, np.random.default_rng(0), cfg)
    assert g_box.tolist() == [0, 0, 100, 100] and l_box[2:].tolist() == [32, 32]
    assert torch.equal(first, F.resize(img, [64, 64], antialias=True))
    top, left = l_box[:2].tolist()
    assert 0 <= top <= 32 and 0 <= left <= 32
    assert torch.equal(second, F.resized_crop(first, top, left, 32, 32, [64, 64], antialias=True))
    # Each view of a batch shows its own image: one flat colour per image.
    red, green = (np.zeros((50, 70, 3), np.uint8) for _ in range(2))
    red[..., 0], green[..., 1] = 200, 150
    batch = build_cropmae_batch([red, green], np.random.default_rng(1), _tiny())
    for i, colour in enumerate((red, green)):
        want = normalize(torch.from_numpy(colour[:1, :1]).permute(2, 0, 1))
        for view in ("f1", "f2"):
            torch.testing.assert_close(batch[view][i], want.expand(3, 64, 64))


def test_default_scales_flips_and_strategies():
    rng = np.random.default_rng(0)
    imgs = [rng.integers(0, 256, (120, 160, 3), dtype=np.uint8) for _ in range(64)]
    batch = build_cropmae_batch(imgs, np.random.default_rng(0), _tiny())
    g, lo = batch["boxes"][:, 0].double(), batch["boxes"][:, 1].double()
    g_area, l_area = g[:, 2] * g[:, 3] / (120 * 160), lo[:, 2] * lo[:, 3] / 64**2
    assert g_area.min() >= 0.1 - 0.02 and g_area.max() <= 1.0  # rounding to whole pixels
    assert l_area.min() >= 0.3 - 0.02 and l_area.max() <= 0.6 + 0.02
    assert ((lo[:, :2] >= 0) & (lo[:, :2] + lo[:, 2:] <= 64)).all()
    flips = batch["flips"].float().mean(0)
    assert ((flips > 0.3) & (flips < 0.7)).all()  # p = 0.5, each view on its own
    assert (batch["flips"][:, 0] != batch["flips"][:, 1]).any()
    again = build_cropmae_batch(imgs, np.random.default_rng(0), _tiny())
    assert all(torch.equal(batch[k], again[k]) for k in batch)
    swapped = build_cropmae_batch(imgs, np.random.default_rng(0), _tiny(crops="local_to_global"))
    assert torch.equal(swapped["f1"], batch["f2"]) and torch.equal(swapped["f2"], batch["f1"])
    rand = build_cropmae_batch(imgs[:8], np.random.default_rng(0), _tiny(crops="random"))
    r = rand["boxes"][:, 1].double()
    assert (r[:, 2] * r[:, 3] / (120 * 160) >= 0.1 - 0.02).all()


def test_a_training_step_reaches_encoder_and_decoder_and_masks_985_percent():
    torch.manual_seed(0)
    model = CropMAE(_tiny(image_size=224))  # N = 196 patches: int(196 x 0.015) = 2 stay visible
    rng = np.random.default_rng(0)
    imgs = [rng.integers(0, 256, (240, 320, 3), dtype=np.uint8) for _ in range(2)]
    batch = build_cropmae_batch(imgs, rng, model.cfg)
    enc = model.encode(batch["f1"], batch["f2"], torch.Generator().manual_seed(0))
    assert enc["z1"].shape == (2, 197, 64) and enc["z2"].shape == (2, 1 + 2, 64)
    assert (enc["mask"].sum(1) == 194).all()
    loss = model.training_step(batch)["loss"]
    assert torch.isfinite(loss)
    loss.backward()
    for part in (model.backbone, model.blocks, model.decoder_pred, model.decoder_embed):
        grads = [p.grad for p in part.parameters() if p.requires_grad]
        assert grads and all(g is not None for g in grads)
        assert sum(float(g.abs().sum()) for g in grads) > 0


def _views(b, seed, same=False):
    gen = torch.Generator().manual_seed(seed)
    f1 = torch.randn(b, 3, 64, 64, generator=gen)
    return {"f1": f1, "f2": f1.clone() if same else torch.randn(b, 3, 64, 64, generator=gen)}


def test_pretext_metric_is_zero_for_a_perfect_predictor_and_baselines_are_siammaes(monkeypatch):
    model = CropMAE(_tiny(mask_ratio=0.75)).eval()
    assert (CropMAE.pretext_metric, CropMAE.pretext_higher_is_better) == ("recon_error", False)
    batches = [_views(2, 0), _views(3, 1)]
    learned = model.pretext_metrics(batches)["recon_error"]
    assert np.isfinite(learned) and learned > 0.1
    base = model.pretext_baselines([_views(2, 0, same=True)])
    assert set(base) == {"copy_view", "patch_mean"}
    assert base["copy_view"]["recon_error"] == pytest.approx(0.0, abs=1e-10)
    assert base["patch_mean"]["recon_error"] == pytest.approx(767 / 768, rel=1e-4)
    encode, stash = model.encode, {}

    def encode_and_keep_target(f1, f2, gen=None):
        stash["target"] = model.target(f2)
        return encode(f1, f2, gen)

    monkeypatch.setattr(model, "encode", encode_and_keep_target)
    monkeypatch.setattr(model, "decode", lambda *a: stash["target"])
    assert model.pretext_metrics(batches) == {"recon_error": 0.0}


def test_cropmae_checkpoints_get_the_siammae_propagation_preset():
    spec = {"backbone": "vit_small_patch16", "method": "cropmae"}
    assert choose_preset("auto", spec) == "siammae_vit"


@pytest.mark.parametrize("name", ["demo.yaml", "learning.yaml"])
def test_the_cpu_sections_validate_at_vit_ti8_96px(name):
    section = yaml.safe_load((REPO / "data_specs" / name).read_text())["pretrain_cropmae"]
    cfg = PretrainCropMAEConfig.model_validate(section)
    assert (cfg.method.backbone, cfg.method.image_size, cfg.val.dataset) == (
        "vit_tiny_patch8",
        96,
        "davis_heldout",
    )
    assert 100 <= cfg.train.max_steps <= 300


def test_stage_trains_on_image_shards_and_scores_held_out_images(tmp_path, make_davis):
    train = make_davis(tmp_path / "train", n=3, masks=False)
    held = make_davis(tmp_path / "held", seqs=("surf",), n=4)
    ws = get_workspace(tmp_path / "home")
    ws.artifacts.mkdir(parents=True)
    method = {**TINY, "image_size": 64, "mask_ratio": 0.75}
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "datasets": {
                    "d": {"root": str(train), "layout": "davis"},
                    "h": {"root": str(held), "layout": "davis"},
                },
                "image_shards": {"dataset": "d", "max_short_side": 96},
                "pretrain_cropmae": {
                    "method": method,
                    "train": {"batch_size": 2, "max_steps": 2, "num_workers": 0, "device": "cpu"},
                    "val": {"dataset": "h", "frame_step": 1, "batch_size": 2, "init_seeds": [0]},
                },
            }
        )
    )
    res = Pipeline(cfg, STAGES, ws).run_stage("pretrain_cropmae")
    out = Path(res.ref.path)
    meta = res.manifest()["metadata"]
    assert meta["steps"] == 2
    pretext = meta["pretext"]
    assert pretext["metric"] == "recon_error" and pretext["items"] == 4
    assert set(pretext["trivial"]) == {"copy_view", "patch_mean"}
    assert json.loads((out / "backbone.json").read_text())["method"] == "cropmae"
    assert (out / "pictures" / "reconstruction.png").is_file()
