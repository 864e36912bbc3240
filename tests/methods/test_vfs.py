import numpy as np
import pytest
import torch

from correlearn.artifacts import ArtifactRef
from correlearn.config import ConfigError, validate
from correlearn.data.frame_index import FrameSampler
from correlearn.data.readers import ShardedVideos
from correlearn.data.sources import DataError
from correlearn.data.usable_videos import usable_videos
from correlearn.methods.vfs import VFS, VFSConfig, build_vfs_batch, vfs_pairs
from correlearn.models.key_queue import KeyQueue
from correlearn.pretrain.configs import PretrainVFSConfig
from correlearn.stage import StageContext
from correlearn.train.config import TrainConfig
from correlearn.train.schedules import ema_tau
from stages import STAGES


def _tiny(**kw) -> VFSConfig:
    kw.setdefault("sampler", FrameSampler(kind="distant", n=4))
    kw.setdefault("image_size", 64)
    return VFSConfig(backbone="resnet_test", **kw)


def test_defaults_are_the_papers():
    cfg = VFSConfig()
    assert (cfg.backbone, cfg.sampler.kind, cfg.sampler.n, cfg.pairing) == (
        "resnet18",
        "distant",
        8,
        "halves",
    )
    assert (cfg.crop_scale, cfg.color_aug, cfg.negatives, cfg.image_size) == (
        (0.2, 1.0),
        False,
        False,
        224,
    )
    assert (cfg.momentum, cfg.queue_size, cfg.temperature, cfg.ema_schedule) == (
        0.999,
        65536,
        0.2,
        "constant",
    )
    model = VFS(cfg)
    # VFS ref code R18: projector 512-512-512 (BN on all), predictor 512-128-512.
    assert [m.out_features for m in model.projector if isinstance(m, torch.nn.Linear)] == [512] * 3
    assert [m.out_features for m in model.predictor if isinstance(m, torch.nn.Linear)] == [128, 512]
    assert model.ema_pairs() == []  # SimSiam: the loop does no EMA step
    # The ref code's output BN of the projector is affine (SimSiam's code: non-affine, a switch).
    assert model.projector[-1].affine and model.projector[-1].weight.requires_grad
    simsiam = VFS(VFSConfig(backbone="resnet_test", proj_last_bn_affine=False))
    assert not simsiam.projector[-1].affine
    assert (model.backbone.net.layer1[0].bn2.weight == 0).all()  # zero_init_residual
    with pytest.raises(ConfigError, match="even n"):
        validate(VFSConfig, {"sampler": {"n": 5}})
    with pytest.raises(ConfigError, match="distant or continuous"):
        validate(VFSConfig, {"sampler": {"kind": "gap_pair"}})
    pc = PretrainVFSConfig()
    assert (pc.train.epochs, pc.train.batch_size, pc.optim.name, pc.optim.base_lr) == (
        200,
        256,
        "sgd",
        0.05,
    )
    assert (pc.optim.weight_decay, pc.optim.momentum, pc.optim.warmup_epochs) == (1e-4, 0.9, 0)


def test_pairings():
    halves = vfs_pairs(8, "halves")
    assert len(halves) == 16 and all(a < 4 <= b for a, b in halves) and len(set(halves)) == 16
    assert vfs_pairs(8, "roll") == [(i, (i + 1) % 8) for i in range(8)]


def test_ema_momentum_is_constant_as_moco_or_cosine():
    moco = VFS(_tiny(negatives=True, queue_size=16, moco_dim=8))
    assert moco.ema_pairs() == [
        (moco.backbone, moco.target_backbone),
        (moco.projector, moco.target_projector),
    ]
    assert [moco.ema_momentum(s, 10) for s in (0, 5, 10)] == [0.999] * 3
    cosine = VFS(_tiny(negatives=True, queue_size=16, moco_dim=8, ema_schedule="cosine"))
    assert [cosine.ema_momentum(s, 10) for s in (0, 5, 10)] == [
        ema_tau(s, 10, 0.999) for s in (0, 5, 10)
    ]
    assert cosine.ema_momentum(10, 10) == 1.0


def test_key_queue_is_fifo_with_wraparound():
    q = KeyQueue(5, 2)
    init = q.keys.clone()
    key = lambda *v: torch.tensor([[float(x), 0.0] for x in v])  # noqa: E731
    assert torch.equal(q.enqueue(key(0, 1, 2)), init[:3])
    out = q.enqueue(key(3, 4, 5, 6))  # wraps around the end of the buffer
    assert torch.equal(out, torch.cat([init[3:], key(0, 1)]))
    assert q.ordered()[:, 0].tolist() == [2, 3, 4, 5, 6] and int(q.ptr) == 2
    q.enqueue(key(*range(7, 14)))  # more than K: only the newest K survive, in order
    assert q.ordered()[:, 0].tolist() == [9, 10, 11, 12, 13]


def test_batch_sampling_augmentation_and_seeds(davis_video_dir):
    videos = ShardedVideos(davis_video_dir)
    ids = [videos.position("bear"), videos.position("boat")]
    cfg = _tiny(sampler=FrameSampler(kind="distant", n=8))
    batch = build_vfs_batch(videos, ids, np.random.default_rng(0), cfg)
    assert batch["frames"].shape == (2, 8, 3, 64, 64) and batch["frames"].dtype == torch.float32
    assert batch["video_ids"].tolist() == ids
    for vid, ts in zip(ids, batch["frame_ids"], strict=True):
        bounds = np.arange(9) * int(videos.n_frames[vid]) // 8  # one frame in each segment
        assert all(bounds[k] <= t < bounds[k + 1] for k, t in enumerate(ts.tolist()))
    again = build_vfs_batch(videos, ids, np.random.default_rng(0), cfg)
    assert torch.equal(batch["frames"], again["frames"])
    assert torch.equal(batch["frame_ids"], again["frame_ids"])
    other = build_vfs_batch(videos, ids, np.random.default_rng(1), cfg)
    assert not torch.equal(batch["frames"], other["frames"])
    cont = _tiny(sampler=FrameSampler(kind="continuous", n=4, delta=5))
    ts = build_vfs_batch(videos, ids, np.random.default_rng(2), cont)["frame_ids"]
    assert (ts.diff(dim=1) == 5).all() and (ts[:, -1] < 41).all()
    # delta 0 draws one frame n times (Table 3 row "0"): each copy still gets its own crop.
    still = build_vfs_batch(
        videos,
        ids,
        np.random.default_rng(3),
        _tiny(sampler=FrameSampler(kind="continuous", n=4, delta=0)),
    )
    assert not torch.equal(still["frames"][0, 0], still["frames"][0, 1])


def _train(model, batch, steps, lr, queue=None):
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=lr, momentum=0.9)
    losses = []
    for step in range(steps):
        out = model.training_step(batch)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        if queue is not None:
            # On one fixed batch the queue would fill with copies of its own positives; keep the
            # random negatives to see eq. 4's learning signal alone.
            assert int(model.queue.ptr) == 8
            model.queue.keys.copy_(queue)
            model.queue.ptr.zero_()
        model.momentum_update(model.ema_momentum(step, steps))  # as the loop: no-op for SimSiam
        losses.append(out["loss"].item())
    return losses


def test_simsiam_and_moco_losses_fall(davis_video_dir):
    videos = ShardedVideos(davis_video_dir)
    ids = [videos.position("bear"), videos.position("boat")]
    torch.manual_seed(0)
    simsiam = VFS(_tiny(image_size=32))
    batch = build_vfs_batch(videos, ids, np.random.default_rng(0), simsiam.cfg)
    losses = _train(simsiam, batch, 20, 0.05)
    assert np.mean(losses[-3:]) < 0.7 * np.mean(losses[:3]), losses
    moco = VFS(_tiny(image_size=32, negatives=True, queue_size=256, moco_dim=32))
    target_before = next(moco.target_backbone.parameters()).clone()
    losses = _train(moco, batch, 20, 0.05, queue=moco.queue.keys.clone())
    assert np.mean(losses[-3:]) < 0.7 * np.mean(losses[:3]), losses
    online, target = next(moco.backbone.parameters()), next(moco.target_backbone.parameters())
    assert not torch.equal(target, target_before) and not torch.equal(target, online)
    moco.momentum_update(0.0)  # m = 0 copies the online weights
    assert torch.equal(next(moco.target_backbone.parameters()), online)
    pic = simsiam.pictures(batch)["frames"]
    assert pic.dtype == np.uint8 and pic.shape == (2 + 2 * (32 + 14 + 2), 2 + 4 * (32 + 2), 3)


def _ctx(cfg, video_dir, index_dir, out_dir) -> StageContext:
    inputs = {
        "videos": ArtifactRef("video_shards", "v", str(video_dir)),
        "frames": ArtifactRef("frame_index", "f", str(index_dir)),
    }
    return StageContext(
        STAGES["pretrain_vfs"], cfg, {}, inputs, out_dir, None, None, out_dir, False
    )


def test_stage_skips_short_videos_and_trains(davis_video_dir, davis_frame_index_dir, tmp_path):
    train = TrainConfig(
        batch_size=2, epochs=5, max_steps=2, device="cpu", num_workers=0, log_every=1
    )
    cfg = PretrainVFSConfig(method=_tiny(), train=train)
    ctx = _ctx(cfg, davis_video_dir, davis_frame_index_dir, tmp_path)
    with pytest.warns(UserWarning, match="skipped hike"):
        meta = STAGES["pretrain_vfs"].run(ctx)
    assert meta["steps"] == 2 and ctx.counts["videos_used"] == 2
    assert [s["item"] for s in ctx.skipped] == ["hike"]
    assert (tmp_path / "backbone.pt").is_file() and (tmp_path / "pictures" / "frames.png").is_file()
    long = _tiny(sampler=FrameSampler(kind="continuous", n=4, delta=50))
    videos = ShardedVideos(davis_video_dir)
    with pytest.raises(DataError, match="no usable video"):
        usable_videos(davis_frame_index_dir, videos, long.sampler)
