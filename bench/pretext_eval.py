"""Held-out scoring and BN calibration at the demo's sizes: ours against the plain way.

Both run in the same process on the same model and inputs, rounds alternating the two:

1. VFS's held-out metric (cross-frame retrieval of the demo: 8 draws of 6 videos x 8 frames at
   96 px, ResNet-18): every frame embedded once, each slot pair reading its rows, against the
   definition run pair by pair (``two_view_retrieval`` per slot pair, which embeds a frame once
   for each of the n/2 pairs it is in, twice per branch). The two scores must agree.
2. The BN-calibrated baseline (20 lr-0 steps of BYOL's pipeline, ResNet-18 at 96 px, batch 32)
   through ``fit``: forward passes only, as the loop runs every step at lr 0, against full steps
   (forward, backward, AdamW at lr 0). The weights and BatchNorm statistics must agree.

Inputs are random tensors: the cost does not depend on the pictures.

    python bench/pretext_eval.py [--rounds 3] [--steps 20]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from correlearn.data.frame_index import FrameSampler
from correlearn.methods.byol import BYOL, BYOLConfig
from correlearn.methods.vfs import VFS, VFSConfig
from correlearn.pretext.metrics import two_view_retrieval
from correlearn.train.config import OptimConfig, TrainConfig
from correlearn.train.loop import fit
from correlearn.train.session import TrainingSession


def _pairwise_vfs(model: VFS, batches: list[dict[str, torch.Tensor]]) -> float:
    """The metric's definition, slot pair by slot pair (SimSiam branches)."""
    target = lambda x: model.projector(model.backbone(x))  # noqa: E731
    predict = lambda x: model.predictor(target(x))  # noqa: E731
    scores = [
        two_view_retrieval(predict, target, [(b["frames"][:, i], b["frames"][:, j])], None, False)
        for b in batches
        for i, j in model.pairs
    ]
    return float(np.mean(scores))


def _timed(fn) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def bench_vfs_metric(rounds: int) -> tuple[float, float]:
    torch.manual_seed(0)
    cfg = VFSConfig(backbone="resnet18", sampler=FrameSampler(kind="distant", n=8), image_size=96)
    model = VFS(cfg).eval()
    gen = torch.Generator().manual_seed(0)
    batches = [{"frames": torch.randn(6, 8, 3, 96, 96, generator=gen)} for _ in range(8)]
    ours, plain = [], []
    with torch.no_grad():
        for _ in range(rounds):
            t, a = _timed(lambda: model.pretext_metrics(batches)["video_retrieval_top1"])
            ours.append(t)
            t, b = _timed(lambda: _pairwise_vfs(model, batches))
            plain.append(t)
            assert abs(a - b) < 1e-9, (a, b)
    return statistics.median(ours), statistics.median(plain)


def _calibrate(steps: int, full_steps: bool, workdir: Path) -> tuple[float, dict]:
    torch.manual_seed(0)
    cfg = BYOLConfig(backbone="resnet18", proj_hidden_dim=1024, image_size=96)
    method = BYOL(cfg)
    gen = torch.Generator().manual_seed(1)
    batch = {
        "view1": torch.randn(32, 3, 96, 96, generator=gen),
        "view2": torch.randn(32, 3, 96, 96, generator=gen),
    }
    train = TrainConfig(batch_size=32, epochs=1, device="cpu", ckpt_every=10_000, log_every=10)
    optim = OptimConfig(name="adamw", base_lr=0.0, min_lr=0.0, warmup_steps=0)
    init = TrainingSession.__init__

    def plain(self, *args, **kwargs):
        init(self, *args, **kwargs)
        self.forward_only = False

    if full_steps:
        TrainingSession.__init__ = plain
    try:
        t, _ = _timed(
            lambda: fit(
                method,
                lambda s: iter([batch] * (steps - s)),
                train,
                optim,
                workdir,
                None,
                total_steps=steps,
                progress=False,
            )
        )
    finally:
        TrainingSession.__init__ = init
    return t, method.state_dict()


def bench_bn_calibration(rounds: int, steps: int) -> tuple[float, float]:
    ours, plain = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(rounds):
            t, a = _calibrate(steps, False, Path(tmp) / f"ours{r}")
            ours.append(t)
            t, b = _calibrate(steps, True, Path(tmp) / f"plain{r}")
            plain.append(t)
            assert all(torch.equal(a[k], b[k]) for k in a)
    return statistics.median(ours), statistics.median(plain)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=20, help="BN-calibration steps")
    args = ap.parse_args(argv)
    print(f"torch threads: {torch.get_num_threads()}; median of {args.rounds} rounds")
    print("| work | ours | plain | ratio |")
    print("|---|---|---|---|")
    ours, plain = bench_vfs_metric(args.rounds)
    print(
        f"| VFS held-out metric, 8 x 6 videos x 8 frames | {ours:.2f} s | {plain:.2f} s "
        f"| **{plain / ours:.1f}x** |"
    )
    ours, plain = bench_bn_calibration(args.rounds, args.steps)
    print(
        f"| BN calibration, {args.steps} BYOL steps at lr 0 | {ours:.2f} s | {plain:.2f} s "
        f"| **{plain / ours:.1f}x** |"
    )


if __name__ == "__main__":
    main()
