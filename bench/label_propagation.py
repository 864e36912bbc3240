"""Benchmark label propagation against the reference algorithms: same features, same masks out.

Three implementations of one propagation step get identical inputs (features of a random-init
ResNet-18 res4 at stride 8, as VFS evaluates; the VFS protocol m=20, k=10, T=0.07, circle of radius
12, first frame restricted too):

(a) ours (``correlearn.eval.windowed_propagation``): 10x10 tiles of target cells against the
    context rectangle in reach, read in place from an (h, w, T, C) layout by one bmm per tile;
    only the in-window cells enter the top-k;
(b) DINO's way (``eval_video_segmentation.py`` ``label_propagation``): the full affinity of every
    target cell to every context cell, ``exp(cos / T)``, times the window mask, top-k threshold,
    normalised (computed in chunks of target cells so that 480p fits in memory: same maths);
(c) the VFS reference's way (``masked_attention_efficient``): per 32 target cells the affinity to
    every context cell, ``-inf`` outside the window, top-k, softmax.

The context of every timed frame holds m + 1 frames (the first frame plus frames [t-m, t), DINO's
queue), with the context pre-filled by the ground truth of frames 0..m, so the step runs at its
steady-state cost from the first timed frame on; masks must agree on every frame (asserted).
Feature extraction is timed separately (one frame per call vs batched, NCHW vs channels-last).
One torch thread by default: on a shared CPU, CPU seconds of one thread measure the work.

Run: .venv/bin/python bench/label_propagation.py [--data DIR] [--sequence S] [--frames 4]
     [--short-sides 240 480] [--threads 1]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

from correlearn.eval.features import dense_feature_fn, frame_to_tensor, resize_short_side
from correlearn.eval.label_propagation import (
    LabelPropConfig,
    labels_to_mask,
    load_davis_sequence,
    mask_to_labels,
)
from correlearn.eval.windowed_propagation import propagate_labels, window_plan
from correlearn.models import build_backbone

ROOT = Path(__file__).resolve().parents[1]
DATA = [ROOT.parent / "shared" / "data" / "davis2016-train", ROOT / "data" / "davis-heldout"]


def full_window(h: int, w: int, radius: float, device) -> torch.Tensor:
    """``(hw, hw)`` bool: Euclidean distance < radius (VFS ``spatial_neighbor`` circle)."""
    yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    d2 = (yy.reshape(-1, 1) - yy.reshape(1, -1)) ** 2 + (xx.reshape(-1, 1) - xx.reshape(1, -1)) ** 2
    return (d2 < radius**2).to(device)


def dino_step(q, fs, ls, mask, cfg, chunk=1024):
    """(b) DINO label_propagation: full exp-affinity, x mask, top-k threshold, normalise."""
    c, h, w = q.shape
    src = torch.stack([f.reshape(c, -1) for f in fs])  # (n, C, hw)
    segs = torch.stack(ls).flatten(2).transpose(0, 1).reshape(ls[0].shape[0], -1)  # (K, n*hw)
    tgt = q.reshape(c, -1)
    out = []
    for p in range(0, h * w, chunk):
        aff = torch.exp(torch.einsum("ncs,ct->nst", src, tgt[:, p : p + chunk]) / cfg.temperature)
        aff *= mask[None, :, p : p + chunk]
        aff = aff.reshape(-1, aff.shape[-1])  # (n*hw source, chunk target)
        tk_min = torch.topk(aff, dim=0, k=cfg.topk)[0].min(dim=0)[0]
        aff[aff < tk_min] = 0
        out.append(segs @ (aff / aff.sum(0, keepdim=True)))
    return torch.cat(out, dim=1).reshape(-1, h, w)


def vfs_step(q, fs, ls, mask, cfg, step=32):
    """(c) VFS masked_attention_efficient: per 32 targets, all context cells, -inf, top-k."""
    c, h, w = q.shape
    keys = torch.stack([f.reshape(c, -1) for f in fs], dim=1).reshape(c, -1)  # (C, n*hw)
    vals = torch.stack(ls, dim=1).reshape(ls[0].shape[0], -1)  # (K, n*hw)
    tgt = q.reshape(c, -1)
    out = q.new_zeros(vals.shape[0], h * w)
    for p in range(0, h * w, step):
        aff = (keys.T @ tgt[:, p : p + step]) / cfg.temperature  # (n*hw, step)
        aff.masked_fill_(~mask[:, p : p + step].repeat(len(fs), 1), float("-inf"))
        top, idx = aff.topk(k=cfg.topk, dim=0)
        out[:, p : p + step] = (vals[:, idx] * top.softmax(dim=0)).sum(1)
    return out.reshape(-1, h, w)


def ours_step(q, fs, ls, mask, cfg):
    return propagate_labels(
        q, fs, ls, cfg.radius, cfg.topk, cfg.temperature, cfg.window, True, cfg.tile, True
    )


def extract(net, frames, cfg, batch, channels_last, device):
    """Features of every frame, L2-normalised, ``(C, h, w)`` each; returns (feats, CPU s)."""
    fn = dense_feature_fn(net, cfg.layer, channels_last=channels_last)
    c0, w0 = time.process_time(), time.perf_counter()
    feats = []
    for b in range(0, len(frames), batch):
        x = torch.cat(
            [
                frame_to_tensor(resize_short_side(f, cfg.short_side), device)
                for f in frames[b : b + batch]
            ]
        )
        feats.extend(fn(x).contiguous(memory_format=torch.channels_last))
    if device.type == "cuda":
        torch.cuda.synchronize()
    return feats, time.process_time() - c0, time.perf_counter() - w0


def flops(h, w, cfg, n_ctx, c):
    """GFLOP per frame: (useful in-window, computed by our tiles, full affinity)."""
    tile = (cfg.tile, cfg.tile) if isinstance(cfg.tile, int) else tuple(cfg.tile)
    plan = window_plan(h, w, float(cfg.radius), cfg.window, tile, "cpu")
    useful = sum(int((~pad).sum()) for _, _, _, pad, _ in plan)
    tiled = sum((t[1] - t[0]) * (t[3] - t[2]) * (r[1] - r[0]) * (r[3] - r[2]) for t, r, *_ in plan)
    return [2 * c * n_ctx * n / 1e9 for n in (useful, tiled, (h * w) ** 2)]


def run_side(net, frames, gts, side, device, n_timed, m):
    cfg = LabelPropConfig.preset("vfs_resnet", short_side=side, context_frames=m)
    feats, fc1, fw1 = extract(net, frames, cfg, 1, False, device)
    feats_b, fcb, fwb = extract(net, frames, cfg, 4, True, device)
    feat_diff = max((a - b).abs().max().item() for a, b in zip(feats, feats_b, strict=True))
    c, h, w = feats[0].shape
    ids = np.union1d([0], np.unique(gts[0])).astype(np.int64)
    gt_labels = [mask_to_labels(g, ids, (h, w), device) for g in gts[: m + 1]]
    mask = full_window(h, w, cfg.radius, device)
    ways = {"ours": ours_step, "DINO way": dino_step, "VFS ref way": vfs_step}
    results = {}
    for name, step in ways.items():
        fs = feats if name == "ours" else [f.contiguous() for f in feats]
        labels, masks = list(gt_labels), []
        c0, w0 = time.process_time(), time.perf_counter()
        for t in range(m + 1, m + 1 + n_timed):
            ctx = [0, *range(t - m, t)]
            soft = step(fs[t], [fs[i] for i in ctx], [labels[i] for i in ctx], mask, cfg)
            labels.append(soft)
            masks.append(labels_to_mask(soft, ids, gts[0].shape, cfg.minmax_normalize))
        if device.type == "cuda":
            torch.cuda.synchronize()
        results[name] = (time.process_time() - c0, time.perf_counter() - w0, labels, masks)
    return cfg, (h, w, c), (fc1, fw1, fcb, fwb, feat_diff), results


def report(side, device, shape, feat_t, results, n, m, cfg):
    h, w, c = shape
    fc1, fw1, fcb, fwb, diff = feat_t
    n_feat = m + 1 + n  # frames extracted
    useful, tiled, full = flops(h, w, cfg, m + 1, c)
    on_cpu = device.type == "cpu"
    t_of = (lambda r: r[0]) if on_cpu else (lambda r: r[1])
    base = t_of(results["DINO way"])
    unit = "CPU s" if on_cpu else "s"
    print(f"\n{device.type.upper()}, short side {side}: features {h}x{w}x{c}, m={m} (n={m + 1})")
    print(
        f"- features, frames per {unit}: one frame per call {n_feat / (fc1 if on_cpu else fw1):.2f}"
        f", batched 4 + channels-last {n_feat / (fcb if on_cpu else fwb):.2f} (max |diff| {diff:.1e})"
    )
    print(
        f"- GFLOP per frame: in-window {useful:.1f}, our tiles {tiled:.1f}, full affinity {full:.1f}"
    )
    feat_s = (fcb if on_cpu else fwb) / n_feat  # per frame, batched + channels-last
    print(
        f"\n| propagation | frames per {unit} | vs DINO way | with features, frames per {unit} "
        "| GFLOP/s (of its own FLOPs) | masks |"
    )
    print("|---|---:|---:|---:|---:|---|")
    ref_masks = results["DINO way"][3]
    for name, r in results.items():
        same = all(np.array_equal(a, b) for a, b in zip(r[3], ref_masks, strict=True))
        soft = max(
            (a - b).abs().max().item() for a, b in zip(r[2], results["DINO way"][2], strict=True)
        )
        own = tiled if name == "ours" else full
        print(
            f"| {name} | {n / t_of(r):.3f} | {base / t_of(r):.1f}x "
            f"| {1 / (t_of(r) / n + feat_s):.3f} | {own * n / t_of(r):.0f} "
            f"| {'identical' if same else 'DIFFER'} (soft max |diff| {soft:.1e}) |"
        )
    return all(
        np.array_equal(a, b) for r in results.values() for a, b in zip(r[3], ref_masks, strict=True)
    )


def fail(message: str) -> None:
    """Bad input: one line on stderr and exit code 2."""
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=next((d for d in DATA if d.is_dir()), DATA[-1]))
    ap.add_argument("--sequence", default=None, help="default: the first sequence of --data")
    ap.add_argument("--frames", type=int, default=4, help="timed frames per short side")
    ap.add_argument("--short-sides", type=int, nargs="+", default=[240, 480])
    ap.add_argument("--context", type=int, default=20, help="m, previous frames in context")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (0: torch default)")
    args = ap.parse_args()
    if not (args.data / "JPEGImages" / "480p").is_dir():
        fail(f"{args.data}: no JPEGImages/480p (not a DAVIS-layout folder)")
    if args.threads:
        torch.set_num_threads(args.threads)
    seq = args.sequence or sorted(p.name for p in (args.data / "JPEGImages/480p").iterdir())[0]
    frames, gts, _ = load_davis_sequence(args.data, seq, args.context + 1 + args.frames)
    if len(frames) < args.context + 1 + args.frames:
        fail(f"{seq}: {len(frames)} frames, need {args.context + 1 + args.frames}")
    torch.manual_seed(0)
    net = build_backbone("resnet18", strides=(1, 2, 1, 1)).eval()
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    a, b = torch.randn(1024, 256), torch.randn(256, 8192)
    a @ b
    c0 = time.process_time()
    for _ in range(5):
        a @ b
    sgemm = 5 * 2 * 1024 * 256 * 8192 / (time.process_time() - c0) / 1e9
    print(
        f"{args.data.name}/{seq}, random-init ResNet-18 res4 (stride 8), torch threads "
        f"{torch.get_num_threads()}, {args.frames} timed frames per setting; "
        f"a plain fp32 GEMM (1024x256 @ 256x8192) runs at {sgemm:.0f} GFLOP/s on the CPU here"
    )
    ok = True
    for device in devices:
        net.to(device)
        with torch.inference_mode():
            for side in args.short_sides:
                cfg, shape, feat_t, results = run_side(
                    net, frames, gts, side, device, args.frames, args.context
                )
                ok &= report(side, device, shape, feat_t, results, args.frames, args.context, cfg)
    print(f"\nmasks identical across the three ways on every frame: {'yes' if ok else 'NO'}")
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
