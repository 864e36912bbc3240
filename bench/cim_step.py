"""Benchmark one CIM training step: batched exemplars against the reference code's per-exemplar loop.

CIM crops E exemplars per context (Li et al. 2023, Sec. 3.2: "all the cropped exemplars can be
grouped together into one forward-backward processing"). Our :class:`~correlearn.methods.cim.CIM`
encodes the B * E exemplars in one backbone pass and decodes all maps at once; the reference code
(models/cim.py ``forward_encoder`` / ``forward_mask_decoder``) runs each exemplar's batch of B
through every block and through the decoder separately and sums the per-exemplar losses. Both give
the same loss on the same inputs (checked below, in eval mode so BatchNorm uses fixed statistics).

Times forward + backward + AdamW step + EMA update (median wall ms and CPU s per step, contexts/s)
after warm-up, the two paths alternating step by step so a shared machine's changing load hits
both alike; FLOPs of one step counted by ``torch.utils.flop_counter.FlopCounterMode``; on CUDA
with bf16 autocast also the peak memory and the model FLOP utilisation (FLOPs / step time / the
device's dense bf16 peak).

Run: .venv/bin/python bench/cim_step.py [--backbone vit_small_patch16] [--batch 2] [--device cpu]
"""

from __future__ import annotations

import argparse
import copy
import time

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from correlearn.data.cim_pairs import CIMPairConfig, build_cim_batch
from correlearn.losses.cim import ce_map_loss
from correlearn.methods.cim import CIM, CIMConfig

# Dense bf16 tensor-core peaks (FLOP/s), matched by substring of the device name.
PEAK_BF16 = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L40": 181e12, "A10": 125e12}


def loop_step(model: CIM, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """The reference code's way: each exemplar encoded and decoded on its own, losses summed."""
    context, exemplars, maps = batch["context"], batch["exemplars"], batch["maps"]
    with torch.no_grad():
        hc = model.target_backbone.dense(context)
    loss = 0.0
    for e in range(exemplars.shape[1]):
        hz = model.backbone.dense(exemplars[:, e])
        logits = model.decoder(hc, hz, tuple(context.shape[-2:]), model.cfg.align_corners)
        loss = loss + ce_map_loss(logits.float(), maps[:, e]).mean()
    return loss


def batched_step(model: CIM, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    return model.training_step(batch)["loss"]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def make_step(model, step_fn, batch, device, amp):
    """A closure running one (forward, backward, AdamW step, EMA update) of ``model``."""
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)

    def one():
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            loss = step_fn(model, batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        model.momentum_update(0.99)

    return one


def step_flops(model, step_fn, batch, device, amp) -> int:
    """FLOPs of one forward + backward (the optimiser's elementwise work is not counted)."""
    with FlopCounterMode(display=False) as counter:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            loss = step_fn(model, batch)
        loss.backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops()


def time_paths(steps_fns, device, steps, warmup):
    """Median wall and CPU seconds per step of each closure, run alternately.

    Alternating the paths step by step keeps a shared machine's changing load from favouring
    either one; the medians drop the odd disturbed step.
    """
    for one in steps_fns:
        for _ in range(warmup):
            one()
    sync(device)
    wall = [[] for _ in steps_fns]
    cpu = [[] for _ in steps_fns]
    for _ in range(steps):
        for i, one in enumerate(steps_fns):
            t0, c0 = time.perf_counter(), time.process_time()
            one()
            sync(device)
            wall[i].append(time.perf_counter() - t0)
            cpu[i].append(time.process_time() - c0)
    return [(float(np.median(w)), float(np.median(c))) for w, c in zip(wall, cpu, strict=True)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--backbone", default="vit_small_patch16")
    ap.add_argument("--batch", type=int, default=2, help="contexts per step (B)")
    ap.add_argument("--exemplars", type=int, default=6, help="exemplars per context (E)")
    ap.add_argument("--context", type=int, default=160)
    ap.add_argument("--exemplar", type=int, default=64)
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    amp = device.type == "cuda"
    torch.backends.cuda.matmul.allow_tf32 = True

    pair = CIMPairConfig(
        context_size=args.context, exemplar_size=args.exemplar, num_exemplars=args.exemplars
    )
    rng = np.random.default_rng(0)
    imgs = [rng.integers(0, 256, (256, 320, 3), dtype=np.uint8) for _ in range(args.batch)]
    batch = build_cim_batch(imgs, np.random.default_rng(1), pair)
    batch = {k: v.to(device) for k, v in batch.items()}
    torch.manual_seed(0)
    base = CIM(CIMConfig(backbone=args.backbone, pair=pair)).to(device)

    # Same loss from both paths on the same weights (eval: BatchNorm uses running statistics).
    base.eval()
    with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
        l_batched, l_loop = batched_step(base, batch).float(), loop_step(base, batch).float()
    tol = 3e-2 if amp else 1e-4
    torch.testing.assert_close(l_batched, l_loop, rtol=tol, atol=tol)

    paths = (("batched (ours)", batched_step), ("per-exemplar loop (ref)", loop_step))
    models = [copy.deepcopy(base).train() for _ in paths]
    flops = [
        step_flops(m, fn, batch, device, amp) for m, (_, fn) in zip(models, paths, strict=True)
    ]
    closures = [
        make_step(m, fn, batch, device, amp) for m, (_, fn) in zip(models, paths, strict=True)
    ]
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times = time_paths(closures, device, args.steps, args.warmup)
    # Peak memory is per process, so on CUDA it is measured per path in a separate pass.
    mems = []
    for one in closures:
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
            one()
            mems.append(torch.cuda.max_memory_allocated(device) / 2**20)
        else:
            mems.append(float("nan"))
    rows = [
        (name, wall, cpu, f, mem)
        for (name, _), (wall, cpu), f, mem in zip(paths, times, flops, mems, strict=True)
    ]

    dev_name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    peak = next((v for k, v in PEAK_BF16.items() if k in dev_name), None) if amp else None
    print(
        f"\nCIM step: {args.backbone}, B={args.batch}, E={args.exemplars}, context "
        f"{args.context}, exemplar {args.exemplar}, device {dev_name}, "
        f"{'bf16 autocast' if amp else 'fp32'}, threads {torch.get_num_threads()}; "
        f"loss batched {l_batched.item():.5f} = loop {l_loop.item():.5f}\n"
    )
    print(
        "| path | ms/step (wall) | CPU s/step | contexts/s | GFLOP/step | TFLOP/s | MFU | peak MiB |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, sec, cpu, f, mem in rows:
        mfu = f"{f / sec / peak:.1%}" if peak else "n/a"
        print(
            f"| {name} | {sec * 1e3:.1f} | {cpu:.2f} | {args.batch / sec:.2f} | {f / 1e9:.1f} | "
            f"{f / sec / 1e12:.3f} | {mfu} | {mem:.0f} |"
        )
    print(
        f"\nspeed-up batched / loop: {rows[1][1] / rows[0][1]:.2f}x wall, "
        f"{rows[1][2] / rows[0][2]:.2f}x CPU time"
    )


if __name__ == "__main__":
    main()
