import numpy as np
import pytest
import torch

from correlearn.artifacts import ArtifactRef
from correlearn.config import ConfigError, validate
from correlearn.data.frame_index import scaled_gaps
from correlearn.data.readers import ShardedVideos
from correlearn.methods.siammae import SiamMAE, SiamMAEConfig, build_siammae_batch
from correlearn.models.patches import unpatchify
from correlearn.models.pos_embed import sincos_2d
from correlearn.pretrain.configs import PretrainSiamMAEConfig
from correlearn.stage import StageContext
from correlearn.train.config import TrainConfig
from stages import STAGES


def _tiny(**kw) -> SiamMAEConfig:
    base = dict(backbone="vit_test_patch16", decoder_dim=32, decoder_depth=1, decoder_heads=4)
    return SiamMAEConfig(**{**base, "image_size": 64, **kw})


def test_defaults_are_the_papers():
    cfg = SiamMAEConfig()
    assert (cfg.backbone, cfg.sampler.kind, cfg.sampler.gap_range, cfg.sampler.ref_fps) == (
        "vit_small_patch16",
        "gap_pair",
        (4, 48),
        30.0,
    )
    assert (cfg.crop_scale, cfg.mask_ratio, cfg.decoder, cfg.norm_pix_loss) == (
        (0.5, 1.0),
        0.95,
        "cross_self",
        True,
    )
    assert (cfg.decoder_dim, cfg.decoder_depth, cfg.decoder_heads, cfg.image_size) == (
        512,
        8,
        16,
        224,
    )
    pc = PretrainSiamMAEConfig()
    assert (pc.train.epochs, pc.train.batch_size, pc.method.repeated_sampling) == (400, 2048, 2)
    o = pc.optim
    assert (o.name, o.base_lr, o.betas, o.weight_decay, o.warmup_epochs) == (
        "adamw",
        1.5e-4,
        (0.9, 0.95),
        0.05,
        40,
    )
    with pytest.raises(ConfigError, match="multiple of"):
        validate(PretrainSiamMAEConfig, {"train": {"batch_size": 5}})
    with pytest.raises(ConfigError, match="gap_pair"):
        validate(SiamMAEConfig, {"sampler": {"kind": "distant"}})


def test_encoder_masks_f2_only_and_decoder_reads_f1():
    torch.manual_seed(0)
    model = SiamMAE(_tiny(image_size=96)).eval()  # N = 36 patches, 35 masked
    f1, f2 = torch.randn(2, 3, 96, 96), torch.randn(2, 3, 96, 96)
    gen = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    with torch.no_grad():
        enc = model.encode(f1, f2, gen())
        assert enc["z1"].shape == (2, 1 + 36, 64) and enc["z2"].shape == (2, 1 + 1, 64)
        assert (enc["mask"].sum(1) == 35).all()
        base = model.reconstruct({"f1": f1, "f2": f2}, gen())["pred"]
        # f1's tokens do not depend on f2.
        torch.testing.assert_close(model.encode(f1, f2 + 1.0, gen())["z1"], enc["z1"])
        # f2's hidden pixels are never seen: changing them leaves the prediction unchanged.
        m = unpatchify(enc["mask"][..., None].expand(-1, -1, 16 * 16 * 3), 16, 6, 6)
        same = model.reconstruct({"f1": f1, "f2": f2 + 3.0 * m}, gen())["pred"]
        torch.testing.assert_close(same, base)
        # The cross-attention reads f1: changing f1 changes f2's reconstruction.
        moved = model.reconstruct({"f1": f1.roll(16, dims=-1), "f2": f2}, gen())["pred"]
        assert not torch.allclose(moved, base)


def test_encoder_position_table_is_mae_sincos_by_default():
    model = SiamMAE(_tiny())
    pe = model.backbone.model.pos_embed
    assert model.cfg.pos_embed == "sincos" and not pe.requires_grad
    torch.testing.assert_close(pe[0, 1:], sincos_2d(64, 14, 14))  # vit_test: img_size 224
    assert SiamMAE(_tiny(pos_embed="learned")).backbone.model.pos_embed.requires_grad


def test_pairs_come_from_one_video_with_scaled_gaps(davis_video_dir):
    videos = ShardedVideos(davis_video_dir)
    ids = [videos.position("bear"), videos.position("boat")]
    cfg = _tiny(repeated_sampling=3)
    batch = build_siammae_batch(videos, ids, np.random.default_rng(0), cfg)
    assert batch["f1"].shape == batch["f2"].shape == (6, 3, 64, 64)
    assert batch["video_ids"].tolist() == [ids[0]] * 3 + [ids[1]] * 3
    allowed = set(scaled_gaps(12.0).tolist())  # [4, 48] at 30 fps -> [2, 19] at 12 fps
    assert min(allowed) == 2 and max(allowed) == 19
    for vid, (i, j) in zip(batch["video_ids"], batch["frame_ids"].tolist(), strict=True):
        assert float(videos.fps[vid]) == 12.0
        assert j - i in allowed and 0 <= i < j < videos.n_frames[vid]
    again = build_siammae_batch(videos, ids, np.random.default_rng(0), cfg)
    assert all(torch.equal(batch[k], again[k]) for k in batch)
    other = build_siammae_batch(videos, ids, np.random.default_rng(1), cfg)
    assert not torch.equal(batch["f1"], other["f1"])


class _StillVideo:
    """One video whose frames are all the same image: f1 == f2 iff crop and flip are shared."""

    n_frames, fps = np.array([60]), np.array([30.0])
    image = np.random.default_rng(0).integers(0, 256, (80, 120, 3), dtype=np.uint8)

    def frames(self, i, ts):
        return np.stack([self.image] * len(ts))


def test_both_frames_share_crop_and_flip():
    batch = build_siammae_batch(_StillVideo(), [0] * 8, np.random.default_rng(0), _tiny())
    assert torch.equal(batch["f1"], batch["f2"])
    assert not torch.equal(batch["f1"][0], batch["f1"][1])


@pytest.mark.parametrize("decoder", ["cross_self", "cross", "joint"])
def test_loss_falls_on_a_fixed_batch(davis_video_dir, decoder):
    videos = ShardedVideos(davis_video_dir)
    torch.manual_seed(0)
    model = SiamMAE(_tiny(decoder=decoder, repeated_sampling=2))
    batch = build_siammae_batch(videos, [0, 1], np.random.default_rng(0), model.cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3)
    losses = []
    for _ in range(25):
        loss = model.training_step(batch)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.mean(losses[-3:]) < 0.8 * np.mean(losses[:3]), losses


def test_stage_trains_and_draws_the_reconstruction_sheet(
    davis_video_dir, davis_frame_index_dir, tmp_path
):
    train = TrainConfig(
        batch_size=4, epochs=5, max_steps=2, device="cpu", num_workers=0, log_every=1
    )
    cfg = PretrainSiamMAEConfig(method=_tiny(), train=train)
    inputs = {
        "videos": ArtifactRef("video_shards", "v", str(davis_video_dir)),
        "frames": ArtifactRef("frame_index", "f", str(davis_frame_index_dir)),
    }
    ctx = StageContext(
        STAGES["pretrain_siammae"], cfg, {}, inputs, tmp_path, None, None, tmp_path, False
    )
    with pytest.warns(UserWarning, match="skipped hike"):
        meta = STAGES["pretrain_siammae"].run(ctx)
    assert meta["steps"] == 2 and ctx.counts["videos_used"] == 2
    sheet = tmp_path / "pictures" / "reconstruction.png"
    assert sheet.is_file() and (tmp_path / "backbone.pt").is_file()
