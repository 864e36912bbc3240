"""The methods' held-out pretext hooks: ``pretext_metrics`` and ``pretext_baselines``."""

import numpy as np
import pytest
import torch
from torch import nn

from correlearn.data.cim_pairs import CIMPairConfig, build_cim_batch
from correlearn.data.frame_index import FrameSampler
from correlearn.losses.mae import masked_mse
from correlearn.methods.byol import BYOL, BYOLConfig
from correlearn.methods.cim import CIM, CIMConfig
from correlearn.methods.orl import ORL, ORLConfig
from correlearn.methods.siammae import SiamMAE, SiamMAEConfig
from correlearn.methods.vfs import VFS, VFSConfig
from correlearn.pretext.metrics import two_view_retrieval

PAIR = CIMPairConfig(context_size=64, exemplar_size=32, num_exemplars=3)


def _noise(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def _byol():
    torch.manual_seed(0)
    cfg = BYOLConfig(
        backbone="resnet_test", proj_hidden_dim=32, proj_dim=16, pred_hidden_dim=32, image_size=32
    )
    return BYOL(cfg).eval()


def _two_views(n, seed, same=False):
    v1 = _noise(n, 3, 32, 32, seed=seed)
    return {"view1": v1, "view2": v1.clone() if same else _noise(n, 3, 32, 32, seed=seed + 100)}


def _is_top1(x, n):
    """A symmetrised top-1 over n items is a multiple of 1 / (2 n) in [0, 1]."""
    return isinstance(x, float) and 0.0 <= x <= 1.0 and abs(x * 2 * n - round(x * 2 * n)) < 1e-6


def test_byol_metric_and_chance():
    model = _byol()
    batches = [_two_views(3, 0), _two_views(3, 1)]
    scores = model.pretext_metrics(batches)
    assert set(scores) == {BYOL.pretext_metric} == {"retrieval_top1"}
    assert _is_top1(scores["retrieval_top1"], 6)
    assert model.pretext_baselines(batches) == {"chance": {"retrieval_top1": 1 / 6}}
    # With each image's video: galleries leave out the other images of the same video.
    groups = ([0, 0, 1], [1, 2, 2])  # 2 images per video: galleries of 6 - 2 + 1 = 5
    grouped = [{**b, "group": torch.tensor(g)} for b, g in zip(batches, groups, strict=True)]
    assert model.pretext_baselines(grouped)["chance"]["retrieval_top1"] == pytest.approx(1 / 5)
    one_video = [{**b, "group": torch.zeros(3, dtype=torch.long)} for b in batches]
    assert model.pretext_metrics(one_video)["retrieval_top1"] == 1.0  # a gallery of one


def test_byol_retrieves_view2_target_with_the_online_prediction():
    # At init the target is a copy of the online net: without a predictor both branches agree.
    model = _byol()
    model.predictor = nn.Identity()
    same = [_two_views(3, 0, same=True), _two_views(3, 1, same=True)]
    assert model.pretext_metrics(same)["retrieval_top1"] == 1.0
    shuffled = [{**b, "view2": b["view2"][torch.tensor([1, 2, 0])]} for b in same]
    assert model.pretext_metrics(shuffled)["retrieval_top1"] == 0.0


def _orl_batch(n, seed, shuffle_image=False):
    g = torch.Generator().manual_seed(seed)
    b = {k: torch.randn(n, 3, 32, 32, generator=g) for k in ("view1", "view2")}
    for k in ("intra1", "intra2", "inter1", "inter2"):
        b[k] = torch.randn(n, 3, 16, 16, generator=g)
    b["intra2"] = b["intra1"].clone()
    b["view2"] = b["view1"].clone()
    if shuffle_image:
        b["view2"] = b["view2"][torch.roll(torch.arange(n), 1)]
    return b


def test_orl_metric_and_chance():
    torch.manual_seed(0)
    cfg = ORLConfig(
        backbone="resnet_test",
        proj_hidden_dim=32,
        proj_dim=16,
        pred_hidden_dim=32,
        image_size=32,
        roi_size=16,
    )
    model = ORL(cfg).eval()
    batches = [_orl_batch(4, 0), _orl_batch(3, 1)]
    scores = model.pretext_metrics(batches)
    assert ORL.pretext_metric == "roi_retrieval_top1"
    assert set(scores) == {"roi_retrieval_top1", "image_top1"}
    assert all(_is_top1(v, 7) for v in scores.values())
    assert model.pretext_baselines(batches) == {
        "chance": {"roi_retrieval_top1": 1 / 7, "image_top1": 1 / 7}
    }
    # Identity predictors: the RoI metric reads the intra pair, image_top1 the image views.
    model.predictors = nn.ModuleDict({k: nn.Identity() for k in model.predictors})
    shuffled = [_orl_batch(4, 0, shuffle_image=True), _orl_batch(3, 1, shuffle_image=True)]
    assert model.pretext_metrics(shuffled) == {"roi_retrieval_top1": 1.0, "image_top1": 0.0}


def _vfs_frames(v, n=4, seed=0, still=False):
    f = _noise(v, n, 3, 32, 32, seed=seed)
    if still:  # every frame of a video the same: slots i and j show one picture
        f = f[:, :1].expand(v, n, 3, 32, 32).clone()
    return {"frames": f}


def _vfs(negatives):
    torch.manual_seed(0)
    cfg = VFSConfig(
        backbone="resnet_test",
        sampler=FrameSampler(kind="distant", n=4),
        image_size=32,
        negatives=negatives,
        queue_size=16,
        moco_dim=16,
    )
    return VFS(cfg).eval()


@pytest.mark.parametrize("negatives", [False, True])
def test_vfs_metric_and_chance(negatives):
    model = _vfs(negatives)
    batches = [_vfs_frames(5, seed=0), _vfs_frames(5, seed=1)]
    scores = model.pretext_metrics(batches)
    assert set(scores) == {VFS.pretext_metric} == {"video_retrieval_top1"}
    assert 0.0 <= scores["video_retrieval_top1"] <= 1.0
    assert model.pretext_baselines(batches) == {"chance": {"video_retrieval_top1": 1 / 5}}
    if negatives:
        # MoCo's key encoder starts as a copy of the query encoder: still videos are found.
        still = [_vfs_frames(5, seed=0, still=True), _vfs_frames(5, seed=1, still=True)]
        assert model.pretext_metrics(still)["video_retrieval_top1"] == 1.0


@pytest.mark.parametrize("negatives", [False, True])
def test_vfs_metric_embeds_each_frame_once_with_the_pairwise_result(negatives):
    # The definition: for every slot pair (i, j), frame i of each video retrieves frame j.
    model = _vfs(negatives)
    with torch.no_grad():  # off the init, where every frame maps to one embedding
        for p in model.parameters():
            p.add_(0.5 * torch.randn_like(p))
        for p in model.buffers():  # and a key encoder of its own (MoCo) too
            if p.is_floating_point():
                p.add_(0.1 * torch.rand_like(p))
    if negatives:
        predict = lambda x: model.projector(model.backbone(x))  # noqa: E731
        target = lambda x: model.target_projector(model.target_backbone(x))  # noqa: E731
    else:
        target = lambda x: model.projector(model.backbone(x))  # noqa: E731
        predict = lambda x: model.predictor(target(x))  # noqa: E731
    batches = [_vfs_frames(6, seed=2), _vfs_frames(6, seed=3)]
    for b in batches:  # slots 0 and 2 show one picture: their pairs score above the others
        b["frames"][:, 2] = b["frames"][:, 0]
    with torch.no_grad():
        pairwise = [
            two_view_retrieval(
                predict, target, [(b["frames"][:, i], b["frames"][:, j])], None, False
            )
            for b in batches
            for i, j in model.pairs
        ]
        scores = model.pretext_metrics(batches)
    assert len(set(pairwise)) > 1  # the pairs differ, so a mixed-up slot would show
    assert scores["video_retrieval_top1"] == pytest.approx(float(np.mean(pairwise)), abs=1e-9)


def _cim_batch(b, seed):
    rng = np.random.default_rng(seed)
    imgs = [rng.integers(0, 256, (72, 80, 3), dtype=np.uint8) for _ in range(b)]
    return build_cim_batch(imgs, np.random.default_rng(seed), PAIR)


def test_cim_metric_and_centre_prior(monkeypatch):
    torch.manual_seed(0)
    cfg = CIMConfig(backbone="vit_test_patch16", decoder_dim=32, decoder_heads=4, pair=PAIR)
    model = CIM(cfg).eval()
    batches = [_cim_batch(2, 0), _cim_batch(1, 1)]
    scores = model.pretext_metrics(batches)
    assert CIM.pretext_metric == "peak_in_box" and set(scores) == {"peak_in_box", "iou"}
    # 3 exemplars per context, 3 contexts: peak_in_box is a share of 9.
    hits = scores["peak_in_box"] * 9
    assert 0.0 <= scores["peak_in_box"] <= 1.0 and abs(hits - round(hits)) < 1e-6
    assert 0.0 <= scores["iou"] <= 1.0
    base = model.pretext_baselines(batches)
    assert set(base) == {"centre_prior"} and set(base["centre_prior"]) == {"peak_in_box", "iou"}
    assert all(0.0 <= v <= 1.0 for v in base["centre_prior"].values())
    # A predictor that returns the ground truth scores 1 on both.
    monkeypatch.setattr(model, "predict_maps", lambda b: b["maps"])
    assert model.pretext_metrics(batches) == {"peak_in_box": 1.0, "iou": 1.0}


def _siammae():
    torch.manual_seed(0)
    cfg = SiamMAEConfig(
        backbone="vit_test_patch16",
        decoder_dim=32,
        decoder_depth=1,
        decoder_heads=4,
        image_size=64,
        mask_ratio=0.75,  # 16 patches, 4 visible
    )
    return SiamMAE(cfg).eval()


def _frame_pair(b, seed, still=False):
    f1 = _noise(b, 3, 64, 64, seed=seed)
    return {"f1": f1, "f2": f1.clone() if still else _noise(b, 3, 64, 64, seed=seed + 100)}


def test_siammae_metric_and_baselines():
    model = _siammae()
    assert SiamMAE.pretext_metric == "recon_error" and not SiamMAE.pretext_higher_is_better
    batches = [_frame_pair(2, 0), _frame_pair(3, 1)]
    scores = model.pretext_metrics(batches)
    assert set(scores) == {"recon_error"}
    assert np.isfinite(scores["recon_error"]) and scores["recon_error"] > 0.1
    still = [_frame_pair(2, 0, still=True), _frame_pair(3, 1, still=True)]
    base = model.pretext_baselines(still)
    # Copying the past frame is perfect when it equals the future one.
    assert base["copy_past"]["recon_error"] == pytest.approx(0.0, abs=1e-10)
    # norm_pix targets have unit unbiased variance: predicting the mean costs (P - 1) / P.
    assert base["patch_mean"]["recon_error"] == pytest.approx(767 / 768, rel=1e-4)
    moving = model.pretext_baselines(batches)
    assert moving["copy_past"]["recon_error"] > 1.5  # two independent unit-variance patches


def test_siammae_metric_is_deterministic_and_masks_as_the_baselines(monkeypatch):
    model = _siammae()
    batches = [_frame_pair(2, 0), _frame_pair(3, 1)]
    rng = torch.get_rng_state()
    first = model.pretext_metrics(batches)
    assert torch.equal(torch.get_rng_state(), rng)  # its own generators, not the global one
    assert model.pretext_metrics(batches) == first
    for i, b in enumerate(batches):
        gen = torch.Generator().manual_seed(i)
        mask = model.reconstruct(b, gen)["mask"]
        assert torch.equal(model._heldout_mask(b["f2"], i), mask)
        assert int(mask.sum()) == len(b["f2"]) * 12
    assert not torch.equal(
        model._heldout_mask(batches[0]["f2"], 0), model._heldout_mask(batches[0]["f2"], 1)
    )
    # A decoder that copies f1 scores what copy_past scores, only if both mask the same patches.
    encode = model.encode
    stash = {}

    def encode_and_keep_f1(f1, f2, gen=None):
        stash["copy"] = model.target(f1)
        return encode(f1, f2, gen)

    monkeypatch.setattr(model, "encode", encode_and_keep_f1)
    monkeypatch.setattr(model, "decode", lambda *a: stash["copy"])
    copied = model.pretext_metrics(batches)["recon_error"]
    assert copied == model.pretext_baselines(batches)["copy_past"]["recon_error"]
    # ...and a different mask would give a different error on these frames.
    b = batches[0]
    other = masked_mse(
        model.target(b["f1"]), model.target(b["f2"]), model._heldout_mask(b["f2"], 7)
    )
    same = masked_mse(model.target(b["f1"]), model.target(b["f2"]), model._heldout_mask(b["f2"], 0))
    assert float(other) != float(same)
