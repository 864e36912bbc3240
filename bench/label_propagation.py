"""Benchmark label propagation: features cached once per frame vs re-extracted context features.

Ours (correlearn.eval.label_propagation.propagate_sequence) computes each frame's features once and
keeps the context (first frame + last m frames) in a queue. The baseline re-extracts the features of
the first frame and of the m previous frames for every target frame (a naive recurrent evaluator),
then runs the same propagation step, so both must give identical masks (asserted). Features: a
fixed random-init torchvision ResNet-18, res4 with strides (1, 2, 1, 1) (stride 8), as VFS
evaluates. Frames: real DAVIS-2016 sequences at a reduced short side (CPU, one torch thread).
Note: DINO's eval_video_segmentation.py does *not* re-extract: it queues the context features too.

Run: .venv/bin/python bench/label_propagation.py [--short-side 160] [--frames 16] [--context 20]
"""

from __future__ import annotations

import argparse
import time
from collections import deque
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from correlearn.eval.davis_metrics import evaluate_sequence
from correlearn.eval.features import dense_feature_fn, frame_to_tensor, resize_short_side
from correlearn.eval.label_propagation import (
    LabelPropConfig,
    labels_to_mask,
    load_davis_sequence,
    mask_to_labels,
    propagate_labels,
    propagate_sequence,
)

DAVIS = Path("/work/shared/data/davis2016-train")


class ResNet18Res4(nn.Module):
    """torchvision ResNet-18 up to layer3 (res4) with layer3's stride removed -> stride 8."""

    def __init__(self, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        net = torchvision.models.resnet18(weights=None)
        net.layer3[0].conv1.stride = (1, 1)
        net.layer3[0].downsample[0].stride = (1, 1)
        self.body = nn.Sequential(
            net.conv1, net.bn1, net.relu, net.maxpool, net.layer1, net.layer2, net.layer3
        )

    def dense(self, x, layer="res4"):
        return self.body(x)


def counted(fn):
    calls = [0, None]  # number of calls, last feature shape

    def wrapped(x):
        calls[0] += 1
        out = fn(x)
        calls[1] = tuple(out.shape[-2:])
        return out

    return wrapped, calls


def propagate_recompute(feature_fn, frames, first_mask, cfg):
    """Baseline: the context features are extracted again for every target frame."""
    ids = np.union1d([0], np.unique(first_mask)).astype(np.int64)

    def features(frame):
        x = frame_to_tensor(resize_short_side(frame, cfg.short_side, cfg.size_multiple))
        return F.normalize(feature_fn(x)[0].float(), dim=0)

    with torch.inference_mode():
        first_feat = features(frames[0])
        first_label = mask_to_labels(first_mask, ids, tuple(first_feat.shape[-2:]), "cpu")
        labels: deque = deque(maxlen=cfg.context_frames)  # (frame index, soft labels)
        preds = [first_mask.copy()]
        for t in range(1, len(frames)):
            ctx_feats = [features(frames[0])] + [features(frames[i]) for i, _ in labels]
            soft = propagate_labels(
                features(frames[t]),
                torch.stack(ctx_feats),
                torch.stack([first_label] + [lab for _, lab in labels]),
                radius=cfg.radius,
                topk=cfg.topk,
                temperature=cfg.temperature,
                window=cfg.window,
                restrict_first=cfg.restrict_first,
                tile=cfg.tile,
            )
            labels.append((t, soft))
            preds.append(labels_to_mask(soft, ids, first_mask.shape, cfg.minmax_normalize))
    return preds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sequences", nargs="+", default=["bear", "car-turn"])
    ap.add_argument("--short-side", type=int, default=160)
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--context", type=int, default=20, help="m, previous frames in context")
    # One thread by default: on a shared CPU, CPU seconds of a single thread measure the work
    # done; wall time and multi-thread spin-waits mostly measure the neighbours.
    ap.add_argument("--threads", type=int, default=1, help="torch threads (0: torch default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = LabelPropConfig.preset(
        "vfs_resnet", short_side=args.short_side, context_frames=args.context
    )
    fn = dense_feature_fn(ResNet18Res4(), "res4")
    rows, tot = [], np.zeros(5)
    for seq in args.sequences:
        frames, masks, _ = load_davis_sequence(DAVIS, seq, max_frames=args.frames)
        ours_fn, ours_calls = counted(fn)
        w0, c0 = time.perf_counter(), time.process_time()
        ours = propagate_sequence(ours_fn, frames, masks[0], cfg)
        w_ours, c_ours = time.perf_counter() - w0, time.process_time() - c0
        base_fn, base_calls = counted(fn)
        w0, c0 = time.perf_counter(), time.process_time()
        base = propagate_recompute(base_fn, frames, masks[0], cfg)
        w_base, c_base = time.perf_counter() - w0, time.process_time() - c0
        for t, (a, b) in enumerate(zip(ours, base, strict=True)):
            assert np.array_equal(a, b), f"{seq} frame {t}: masks differ"
        j = evaluate_sequence(ours, masks)["J"].mean()
        h, w = resize_short_side(frames[0], cfg.short_side, cfg.size_multiple).shape[:2]
        n = len(frames)
        fh, fw = ours_calls[1]
        rows.append(
            f"| {seq} | {n} | {h}x{w} -> {fh}x{fw} | {ours_calls[0]} / {base_calls[0]} "
            f"| {n / c_ours:.2f} / {n / c_base:.2f} | {c_base / c_ours:.1f}x "
            f"| {n / w_ours:.2f} / {n / w_base:.2f} | {w_base / w_ours:.1f}x | {j:.3f} |"
        )
        tot += (n, c_ours, c_base, w_ours, w_base)
    print(
        f"\nVFS ResNet-18 res4 (random init), m={cfg.context_frames}, k={cfg.topk}, "
        f"T={cfg.temperature}, radius {cfg.radius:g} ({cfg.window}), "
        f"torch threads {torch.get_num_threads()}, CPU\n"
    )
    print(
        "| sequence | frames | input -> features | feature calls ours / recompute "
        "| frames per CPU-s ours / recompute | speed-up (CPU) "
        "| frames/s wall ours / recompute | speed-up (wall) | J (random features) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    n, c_ours, c_base, w_ours, w_base = tot
    print(
        f"| **all** | {int(n)} | | | {n / c_ours:.2f} / {n / c_base:.2f} "
        f"| **{c_base / c_ours:.1f}x** | {n / w_ours:.2f} / {n / w_base:.2f} "
        f"| **{w_base / w_ours:.1f}x** | |"
    )
    print("\nmasks identical between the two on every frame: yes")


if __name__ == "__main__":
    main()
