"""What the label-propagation context choice is worth: one checkpoint, three context modes.

Scores one checkpoint artifact (a folder with ``backbone.pt`` + ``backbone.json``; default: a
seeded random-init ResNet-18 built here) on a DAVIS-layout folder under the three ways the
reference codes build the context of the early frames (``queue``: DINO, first frame + the last m
predictions; ``vfs``: VFS, first frame + frames [t-m, t); ``crw``: CRW/CropMAE, the video padded
with m copies of frame 0). Everything else is the checkpoint's preset (``vfs_resnet`` for a
ResNet); each frame's features are computed once and shared by the three modes.

Run: .venv/bin/python bench/lp_context_modes.py [CHECKPOINT] [--data DIR] [--short-side 240]
     [--frames 30] [--preset auto]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # stages/ (preset choice) when run as a script

from correlearn.eval.davis_metrics import evaluate_dataset  # noqa: E402
from correlearn.eval.dense_setup import choose_preset  # noqa: E402
from correlearn.eval.features import dense_feature_fn, frame_to_tensor, resize_short_side  # noqa: E402
from correlearn.eval.label_propagation import (  # noqa: E402
    LabelPropConfig,
    labels_to_mask,
    load_davis_sequence,
    mask_to_labels,
    propagate_soft_labels,
    upsample_via,
    write_davis_masks,
)
from correlearn.models import backbone_info, build_backbone  # noqa: E402
from correlearn.models.io import BackboneLoadError, load_backbone, read_backbone_json  # noqa: E402

MODES = ("queue", "vfs", "crw")


def default_data() -> Path:
    held_out = ROOT / "data" / "davis-heldout"
    return held_out if held_out.is_dir() else ROOT / "data" / "davis-mini"


def backbone_and_preset(checkpoint: Path | None, preset: str) -> tuple:
    """``(backbone, LabelPropConfig name, description)`` of the artifact or a random ResNet-18."""
    if checkpoint is None:
        spec = {"backbone": "resnet18", "method": "random_init"}
        name = choose_preset(preset, spec)
        strides = LabelPropConfig.preset(name).strides
        torch.manual_seed(0)
        net = build_backbone("resnet18", **({"strides": strides} if strides else {}))
        return net.eval(), name, "random-init ResNet-18 (seed 0)"
    spec = read_backbone_json(checkpoint)
    name = choose_preset(preset, spec)
    strides = LabelPropConfig.preset(name).strides
    takes_strides = "strides" in backbone_info(spec["backbone"]).options
    kwargs = {"strides": tuple(strides)} if strides and takes_strides else {}
    net = load_backbone(checkpoint, **kwargs)
    return net, name, f"{checkpoint} ({spec['backbone']}, {spec.get('method')})"


def sequence_features(fn, frames, cfg) -> list[torch.Tensor]:
    feats = []
    for b in range(0, len(frames), cfg.feature_batch):
        x = torch.cat(
            [
                frame_to_tensor(resize_short_side(f, cfg.short_side, cfg.size_multiple))
                for f in frames[b : b + cfg.feature_batch]
            ]
        )
        feats.extend(F.normalize(fn(x), dim=1).contiguous(memory_format=torch.channels_last))
    return feats


def fail(message: str) -> None:
    """Bad input: one line on stderr and exit code 2."""
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint", nargs="?", type=Path, help="checkpoint artifact folder")
    ap.add_argument("--data", type=Path, default=default_data(), help="DAVIS-layout folder")
    ap.add_argument("--short-side", type=int, default=240)
    ap.add_argument("--frames", type=int, default=30, help="first N frames per sequence (0: all)")
    ap.add_argument("--preset", default="auto", help="auto | vfs_resnet | dino_vit | siammae_vit")
    ap.add_argument("--sequences", nargs="*", help="default: every sequence of --data")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    jpegs = args.data / "JPEGImages" / "480p"
    if not jpegs.is_dir():
        fail(f"{args.data}: no JPEGImages/480p (not a DAVIS-layout folder)")
    try:
        net, preset, what = backbone_and_preset(args.checkpoint, args.preset)
    except (BackboneLoadError, ValueError) as exc:
        fail(f"{args.checkpoint}: {exc}")
    cfg = LabelPropConfig.preset(preset, short_side=args.short_side)
    fn = dense_feature_fn(net, cfg.layer)
    seqs = args.sequences or sorted(p.name for p in jpegs.iterdir() if p.is_dir())
    max_frames = args.frames or None
    t0, p0 = time.perf_counter(), time.process_time()
    with tempfile.TemporaryDirectory() as tmp, torch.inference_mode():
        for seq in seqs:
            c0 = time.process_time()
            frames, gts, names = load_davis_sequence(args.data, seq, max_frames)
            ids = np.union1d([0], np.unique(gts[0])).astype(np.int64)
            feats = sequence_features(fn, frames, cfg)
            via = upsample_via(cfg, gts[0].shape)
            c1 = time.process_time()
            for mode in MODES:
                mcfg = cfg.model_copy(update={"context": mode})
                first = mask_to_labels(gts[0], ids, feats[0].shape[-2:], "cpu", cfg.first_labels)
                preds = [gts[0]] + [
                    labels_to_mask(s, ids, gts[0].shape, cfg.minmax_normalize, via)
                    for s in propagate_soft_labels(iter(feats), first, mcfg)
                ]
                write_davis_masks(Path(tmp) / mode, seq, preds, names)
            c2 = time.process_time()
            print(
                f"{seq}: {len(frames)} frames, CPU s: features {c1 - c0:.1f}, "
                f"3 x propagation {c2 - c1:.1f}",
                file=sys.stderr,
            )
        gt_dir = args.data / "Annotations" / "480p"
        c0 = time.process_time()
        scores = {m: evaluate_dataset(Path(tmp) / m, gt_dir, seqs, max_frames) for m in MODES}
        print(f"J&F: CPU s {time.process_time() - c0:.1f}", file=sys.stderr)
    print(
        f"\n{what}, preset {preset} (m={cfg.context_frames}, k={cfg.topk}, T={cfg.temperature}, "
        f"radius {cfg.radius:g} {cfg.window}); {args.data.name}: {len(seqs)} sequences, "
        f"{'all' if max_frames is None else f'first {max_frames}'} frames, short side "
        f"{args.short_side}; {time.perf_counter() - t0:.0f} s wall, "
        f"{time.process_time() - p0:.0f} s CPU\n"
    )
    print("| context | J&F | J | F | source |\n|---|---:|---:|---:|---|")
    source = {"queue": "DINO", "vfs": "VFS", "crw": "CRW / CropMAE"}
    for m in MODES:
        s = scores[m]
        mark = " (preset default)" if m == cfg.context else ""
        print(
            f"| `{m}`{mark} | {s['JF_mean']:.3f} | {s['J_mean']:.3f} | {s['F_mean']:.3f} "
            f"| {source[m]} |"
        )


if __name__ == "__main__":
    main()
