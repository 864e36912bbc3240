"""BYOL's training step learns its task: on a fixed batch, each view's prediction comes to
retrieve the target projection of its partner view (BYOL eq. 2 read as retrieval).

A sign error, a target that receives gradients, an EMA that moves the wrong way or views of
different images would each keep the score near chance. So would, in eval mode (the held-out
metric's default), a target normalised with the online network's BatchNorm statistics instead of
its own: its projections of different images then collapse onto one direction.
"""

from pathlib import Path

import numpy as np
import torch

from correlearn.data.sources import DatasetSpec
from correlearn.methods.byol import BYOL, BYOLConfig, build_byol_batch
from correlearn.pretrain.heldout import HeldoutConfig, HeldoutEval, open_heldout
from correlearn.train.schedules import ema_tau

DATA = Path(__file__).resolve().parents[2] / "data" / "davis-mini"


def _fixed_batch(cfg: BYOLConfig) -> dict[str, torch.Tensor]:
    spec = DatasetSpec(name="mini", root=str(DATA), layout="davis")
    data = open_heldout(spec, Path("."), HeldoutConfig(dataset="mini", max_images=32))
    images = [data["images"][i]["image"] for i in range(len(data["images"]))]
    batch = build_byol_batch(images, np.random.default_rng(0), cfg)
    return {**batch, "group": torch.tensor(data["groups"])}


def _scores(model: BYOL, batch: dict, mode: str) -> float:
    return HeldoutEval([batch], batch_norm=mode).score(model)["retrieval_top1"]


def test_byol_learns_to_pair_the_views_of_a_fixed_batch():
    torch.manual_seed(0)
    cfg = BYOLConfig(
        backbone="resnet18", proj_hidden_dim=256, pred_hidden_dim=256, proj_dim=64, image_size=48
    )
    model = BYOL(cfg).train()
    batch = _fixed_batch(cfg)
    chance = model.pretext_baselines([batch])["chance"]["retrieval_top1"]
    before = _scores(model, batch, "batch")
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    steps = 40
    for step in range(steps):
        loss = model.training_step(batch)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        model.momentum_update(ema_tau(step, steps, cfg.base_tau))
    assert before < 3 * chance, (before, chance)
    for mode in ("batch", "running"):
        after = _scores(model, batch, mode)
        assert after > 0.5 and after > 10 * chance, (mode, before, after, chance)
