"""The GPU check in one command: training img/s and MFU per method, label propagation, kNN, JPEG decode.

On CUDA it prints one table (under 8 minutes on one GPU, ``--budget-s``):

- training step img/s and model FLOP utilisation, bf16 autocast, channels-last, eager and
  ``torch.compile``, for CIM ViT-S/16 and ViT-B/16, SiamMAE ViT-S/16, BYOL / ORL ResNet-50 and
  VFS ResNet-18/50 at the papers' per-GPU batch (``bench/workloads.py`` says where each comes from);
  FLOPs of forward + backward counted by ``torch.utils.flop_counter.FlopCounterMode`` on one eager
  step, the peak from :data:`PEAK_BF16` (dense bf16 tensor-core FLOP/s of the device's spec
  sheet); the optimiser's elementwise work is not counted, so MFU is a lower bound;
- label propagation frames/s at 480p (``vfs_resnet`` preset, ResNet-18 res4 at stride 8; the
  embedded DAVIS frames, repeated);
- kNN of 1M x 256 unit vectors (K = 10): FAISS on GPU when faiss-gpu is installed, else said so,
  against ``torch.mm`` + ``topk`` on the GPU;
- JPEG decode img/s: ``torchvision.io.decode_jpeg(device="cuda")`` in batches against OpenCV on
  one CPU thread, same files; and BYOL's two-view batches with its full augmentation at 224 px
  through ``method.decode: device`` on the GPU against the default path on one CPU thread.

Compiled rows run last and are skipped (said so in the table) when the time budget runs out.

Without a GPU it says so, then checks that every model builds and one CPU step (with its FLOP
count) runs at tiny sizes, and that the other sections run on the CPU at toy sizes, and exits 0.

    python bench/gpu.py [--only cim_vit_s16,...] [--steps 10] [--budget-s 450] [--cpu-size 32]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from correlearn.train.optim import build_optimizer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from workloads import WORKLOADS, build, make_batch, optim_config, tiny_overrides  # noqa: E402

DAVIS = Path(__file__).resolve().parents[1] / "data" / "davis-mini" / "JPEGImages" / "480p"

# Dense bf16 tensor-core peaks (FLOP/s) from the vendors' spec sheets, matched in this order by
# substring of torch.cuda.get_device_name() (SXM figures unless the name says PCIe).
PEAK_BF16 = (
    ("B200", 2250e12), ("H200", 989e12), ("H100 PCIe", 756e12), ("H100", 989e12),
    ("A100", 312e12), ("L40S", 362e12), ("L40", 181e12), ("A10", 125e12),
    ("RTX 4090", 165e12), ("RTX 3090", 71e12),
)  # fmt: skip


def peak_flops(name: str) -> float | None:
    """The dense bf16 peak of a device name, or None when it is not in :data:`PEAK_BF16`."""
    return next((v for k, v in PEAK_BF16 if k in name), None)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _to(batch: dict, device: torch.device, channels_last: bool) -> dict:
    out = {}
    for k, v in batch.items():
        v = v.to(device, non_blocking=True)
        out[k] = (
            v.contiguous(memory_format=torch.channels_last) if channels_last and v.ndim == 4 else v
        )
    return out


def step_closure(method, batch, work, compiled: bool, device: torch.device):
    """One optimiser step (forward, backward, step, EMA) of ``method`` on ``batch``."""
    opt, _ = build_optimizer(method, optim_config(work), len(next(iter(batch.values()))), 1)
    fn = torch.compile(method.training_step) if compiled else method.training_step
    has_ema = bool(method.ema_pairs())
    amp = device.type == "cuda"

    def one() -> torch.Tensor:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            loss = fn(batch)["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if has_ema:
            method.momentum_update(0.996)
        return loss.detach()

    return one


def step_flops(method, batch, device: torch.device) -> int:
    """FLOPs of one forward + backward of ``method.training_step`` on ``batch``."""
    with FlopCounterMode(display=False) as counter:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            loss = method.training_step(batch)["loss"]
        loss.backward()
    method.zero_grad(set_to_none=True)
    return counter.get_total_flops()


def bench_training(key: str, batch_size: int, device, compiled: bool, steps: int, extra=None):
    """Row of the training table: img/s, step ms, GFLOP/step, peak memory, loss."""
    work = WORKLOADS[key]
    torch.manual_seed(0)
    method = build(work, extra).to(device)
    params = sum(p.numel() for p in method.parameters())
    channels_last = device.type == "cuda"
    if channels_last:
        method.to(memory_format=torch.channels_last)
    method.train()
    batch = _to(make_batch(method, batch_size, torch.Generator().manual_seed(0)), device,
                channels_last)  # fmt: skip
    flops = step_flops(method, batch, device)
    one = step_closure(method, batch, work, compiled, device)
    t0 = time.perf_counter()
    loss = one()  # compile (when asked) and allocator warm-up
    sync(device)
    first_s = time.perf_counter() - t0
    for _ in range(2):
        one()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        loss = one()
    sync(device)
    sec = (time.perf_counter() - t0) / steps
    mem = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else math.nan
    del method, batch, one
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return {
        "name": work.name, "batch": batch_size, "compiled": compiled, "ms": sec * 1e3,
        "img_s": batch_size * work.images_per_sample / sec, "gflop": flops / 1e9,
        "tflop_s": flops / sec / 1e12, "mem_gib": mem, "loss": float(loss), "first_s": first_s,
        "note": work.batch_note, "params": params,
    }  # fmt: skip


def davis_frames(n: int, root: Path = DAVIS) -> list[np.ndarray]:
    """``n`` RGB frames of the embedded DAVIS sequences (854x480), cycled; noise if absent."""
    files = sorted(root.glob("*/*.jpg"))[:n] if root.is_dir() else []
    if not files:
        rng = np.random.default_rng(0)
        return [rng.integers(0, 256, (480, 854, 3), dtype=np.uint8) for _ in range(n)]
    imgs = [cv2.cvtColor(cv2.imread(str(f)), cv2.COLOR_BGR2RGB) for f in files]
    return [imgs[i % len(imgs)] for i in range(n)]


def bench_label_propagation(device, frames: int, short_side: int) -> dict:
    """Frames/s of ``propagate_sequence`` (vfs_resnet preset, ResNet-18) at ``short_side``."""
    from correlearn.eval.features import dense_feature_fn
    from correlearn.eval.label_propagation import LabelPropConfig, propagate_sequence
    from correlearn.models import build_backbone

    cfg = LabelPropConfig.preset("vfs_resnet", short_side=short_side)
    net = build_backbone("resnet18", strides=cfg.strides).to(device)
    fn = dense_feature_fn(net, cfg.layer, "bf16" if device.type == "cuda" else "fp32",
                          channels_last=True)  # fmt: skip
    video = [
        cv2.resize(f, None, fx=short_side / 480, fy=short_side / 480) for f in davis_frames(frames)
    ]
    mask = np.zeros(video[0].shape[:2], dtype=np.int64)
    mask[mask.shape[0] // 4 : mask.shape[0] // 2, mask.shape[1] // 4 : mask.shape[1] // 2] = 1
    propagate_sequence(fn, video[:3], mask, cfg, device)  # warm-up
    sync(device)
    t0 = time.perf_counter()
    out = propagate_sequence(fn, video, mask, cfg, device)
    sync(device)
    sec = time.perf_counter() - t0
    return {"frames": len(out), "fps": (len(out) - 1) / sec, "size": video[0].shape[:2]}


def bench_knn(device, n: int, d: int, k: int = 10) -> dict:
    """Queries/s of all-vs-all kNN: FAISS (GPU when it sees one) and torch.mm + topk."""
    import faiss

    from correlearn.mining.knn import knn_search, torch_knn

    rng = np.random.default_rng(0)
    emb = rng.standard_normal((n, d), dtype=np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    gpus = faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") else 0
    out = {"n": n, "d": d, "faiss": "faiss-gpu" if gpus else "faiss (CPU build: no GPU index)"}
    t0 = time.perf_counter()
    _, ids_f = knn_search(emb, k, use_gpu=gpus > 0)
    out["faiss_qps"] = n / (time.perf_counter() - t0)
    sync(device)
    t0 = time.perf_counter()
    _, ids_t = torch_knn(emb, k, device=str(device))
    sync(device)
    out["torch_qps"] = n / (time.perf_counter() - t0)
    out["agree"] = float((ids_f == ids_t).mean())
    return out


def bench_jpeg(device, n: int) -> dict:
    """JPEG decode img/s: torchvision on ``device`` in batches of 32 against OpenCV, 1 thread."""
    from torchvision.io import decode_jpeg

    files = sorted(DAVIS.glob("*/*.jpg"))[:n]
    if not files:
        return {"n": 0}
    data = [np.fromfile(f, dtype=np.uint8) for f in files]
    cv2.setNumThreads(1)
    t0 = time.perf_counter()
    for x in data:
        cv2.imdecode(x, cv2.IMREAD_COLOR)
    cpu = len(data) / (time.perf_counter() - t0)
    tensors = [torch.from_numpy(x) for x in data]
    dev = str(device) if device.type == "cuda" else "cpu"
    decode_jpeg(tensors[:4], device=dev)  # warm-up (nvJPEG handles)
    sync(device)
    t0 = time.perf_counter()
    for s in range(0, len(tensors), 32):
        decode_jpeg(tensors[s : s + 32], device=dev)
    sync(device)
    return {"n": len(data), "cv2": cpu, "torchvision": len(data) / (time.perf_counter() - t0),
            "where": dev}  # fmt: skip


def bench_byol_batches(device, n: int, size: int) -> dict:
    """BYOL's two-view batches (its full augmentation) from JPEG bytes, img/s, batches of 32.

    ``method.decode: device`` (one ``decode_jpeg`` call per batch on ``device``, augmentation there)
    against the default path on one CPU thread (OpenCV decode, augmentation on the CPU).
    """
    from correlearn.data.decode import decode_image, decode_on_device
    from correlearn.methods.byol import BYOLConfig, build_byol_batch

    data = [f.read_bytes() for f in sorted(DAVIS.glob("*/*.jpg"))[:n]]
    cfg = BYOLConfig(image_size=size)

    def run(dev) -> float:
        rng = np.random.default_rng(0)
        t0 = time.perf_counter()
        for s in range(0, len(data), 32):
            chunk = data[s : s + 32]
            imgs = decode_on_device(chunk, dev) if dev else [decode_image(b) for b in chunk]
            build_byol_batch(imgs, rng, cfg)
        sync(device)
        return len(data) / (time.perf_counter() - t0)

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        cpu = run(None)
    finally:
        torch.set_num_threads(threads)
    run(device)  # warm-up: nvJPEG handles, kernels
    return {"n": len(data), "size": size, "cpu": cpu, "device": run(device), "where": device.type}


def training_table(rows: list[dict], peak: float | None) -> list[str]:
    lines = [
        "| model | per-GPU batch | torch.compile | ms/step | img/s | GFLOP/step | TFLOP/s | MFU "
        "| peak GiB | batch from |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        if "skipped" in r:
            lines.append(f"| {r['name']} | {r['batch']} | {r['compiled']} | skipped: "
                         f"{r['skipped']} | | | | | | |")  # fmt: skip
            continue
        mfu = f"{r['tflop_s'] * 1e12 / peak:.1%}" if peak else "n/a"
        lines.append(
            f"| {r['name']} | {r['batch']} | {'yes' if r['compiled'] else 'no'} | {r['ms']:.1f} | "
            f"{r['img_s']:.0f} | {r['gflop']:.1f} | {r['tflop_s']:.2f} | {mfu} | "
            f"{r['mem_gib']:.1f} | {r['note']} |"
        )
    return lines


def cpu_check(keys: list[str], size: int) -> int:
    """No GPU: every model builds and one CPU step runs at ``size`` px, batch 2; toy sections."""
    why = ("--cpu given" if torch.cuda.is_available()
           else "no CUDA device (torch.cuda.is_available() is False)")  # fmt: skip
    print(f"{why}: the GPU table is not measured. Checking that every model builds and one CPU "
          f"step runs ({size} px, batch 2).\n")  # fmt: skip
    cpu = torch.device("cpu")
    print("| model | params (M) | loss after 1 step | GFLOP/step | status |")
    print("|---|---:|---:|---:|---|")
    failed = 0
    for key in keys:
        work = WORKLOADS[key]
        try:
            r = bench_training(key, 2, cpu, False, 1, tiny_overrides(work, size))
            ok = math.isfinite(r["loss"]) and r["gflop"] > 0
            status = "ok" if ok else "FAILED: loss not finite or no FLOPs counted"
            print(f"| {work.name} | {r['params'] / 1e6:.1f} | {r['loss']:.4f} | {r['gflop']:.3f} | "
                  f"{status} |")  # fmt: skip
        except Exception as exc:  # report every model, then fail once
            ok = False
            print(f"| {work.name} | | | | FAILED: {type(exc).__name__}: {exc} |")
        failed += not ok
    lp = bench_label_propagation(cpu, 3, 64)
    knn = bench_knn(cpu, 2000, 32)
    jpg = bench_jpeg(cpu, 4)
    byol = bench_byol_batches(cpu, 4, size)
    print(f"\nlabel propagation (CPU, {lp['size'][0]}p, {lp['frames']} frames): {lp['fps']:.1f} fps; "
          f"kNN {knn['n']} x {knn['d']}: {knn['faiss']} {knn['faiss_qps']:.0f} q/s, torch.mm "
          f"{knn['torch_qps']:.0f} q/s, ids agree {knn['agree']:.3f}; JPEG decode (CPU, "
          f"{jpg['n']} files): torchvision {jpg.get('torchvision', 0):.0f} img/s; BYOL batches "
          f"({byol['size']} px), decode: device on the CPU {byol['device']:.0f} img/s, default "
          f"{byol['cpu']:.0f} img/s")  # fmt: skip
    if failed:
        print(f"error: {failed} model(s) failed the CPU check")
        return 1
    print("\nCPU check passed; run this on a CUDA machine for the GPU table.")
    return 0


def gpu_run(keys: list[str], args) -> int:
    device = torch.device("cuda")
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    torch.backends.cudnn.benchmark = True
    name = torch.cuda.get_device_name(device)
    peak = peak_flops(name)
    t_start = time.perf_counter()
    rows: dict[tuple[str, bool], dict] = {}
    for key in keys:  # eager first: the compiled rows are the ones the budget may cut
        batch = args.batch or WORKLOADS[key].paper_batch
        rows[key, False] = bench_training(key, batch, device, False, args.steps)
        print(f"  {WORKLOADS[key].name} eager: {rows[key, False]['img_s']:.0f} img/s", flush=True)
    lp = bench_label_propagation(device, args.lp_frames, 480)
    knn = bench_knn(device, args.knn_n, 256)
    jpg = bench_jpeg(device, args.jpeg_n)
    byol = bench_byol_batches(device, args.jpeg_n, 224)
    for key in keys:
        batch = args.batch or WORKLOADS[key].paper_batch
        left = args.budget_s - (time.perf_counter() - t_start)
        if args.no_compile or left < args.compile_reserve_s:
            why = "--no-compile" if args.no_compile else f"time budget ({left:.0f} s left)"
            rows[key, True] = {"name": WORKLOADS[key].name, "batch": batch, "compiled": "yes",
                               "skipped": why}  # fmt: skip
            continue
        rows[key, True] = bench_training(key, batch, device, True, args.steps)
        print(f"  {WORKLOADS[key].name} compiled: {rows[key, True]['img_s']:.0f} img/s "
              f"(first step {rows[key, True]['first_s']:.0f} s)", flush=True)  # fmt: skip
    order = [rows[k, c] for k in keys for c in (False, True)]
    print(f"\nGPU check on {name} (bf16 dense peak {peak / 1e12 if peak else float('nan'):.0f} "
          f"TFLOP/s), bf16 autocast, channels-last, {args.steps} timed steps, "
          f"{time.perf_counter() - t_start:.0f} s in all\n")  # fmt: skip
    print("\n".join(training_table(order, peak)))
    print(f"\n| other | figure |\n|---|---|\n"
          f"| label propagation, vfs_resnet R18, {lp['size'][0]}x{lp['size'][1]}, {lp['frames']} "
          f"frames | {lp['fps']:.1f} frames/s |\n"
          f"| kNN {knn['n']:,} x {knn['d']}, K=10, {knn['faiss']} | {knn['faiss_qps']:,.0f} q/s |\n"
          f"| kNN same, torch.mm + topk on GPU | {knn['torch_qps']:,.0f} q/s (ids agree "
          f"{knn['agree']:.3f}) |\n"
          f"| JPEG decode, torchvision.io.decode_jpeg on {jpg.get('where')}, batches of 32, "
          f"{jpg['n']} DAVIS frames | {jpg.get('torchvision', 0):.0f} img/s |\n"
          f"| JPEG decode, OpenCV, 1 CPU thread, same files | {jpg.get('cv2', 0):.0f} img/s |\n"
          f"| BYOL batches (2 views, full augmentation, 224 px), method.decode: device on "
          f"{byol['where']} | {byol['device']:.0f} img/s |\n"
          f"| BYOL batches, default path (OpenCV decode + augmentation), 1 CPU thread | "
          f"{byol['cpu']:.0f} img/s |")  # fmt: skip
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default=",".join(WORKLOADS), help="workload keys, comma-separated")
    ap.add_argument("--steps", type=int, default=10, help="timed steps per training row")
    ap.add_argument("--batch", type=int, default=0, help="override the papers' per-GPU batch")
    ap.add_argument("--budget-s", type=float, default=450.0, help="total seconds on the GPU")
    ap.add_argument("--compile-reserve-s", type=float, default=60.0,
                    help="skip a compiled row when less than this is left")  # fmt: skip
    ap.add_argument("--no-compile", action="store_true")
    ap.add_argument("--lp-frames", type=int, default=60)
    ap.add_argument("--knn-n", type=int, default=1_000_000)
    ap.add_argument("--jpeg-n", type=int, default=320)
    ap.add_argument("--cpu-size", type=int, default=32, help="image side of the CPU check")
    ap.add_argument("--cpu", action="store_true", help="run the CPU check even with a GPU")
    args = ap.parse_args(argv)
    keys = [k for k in args.only.split(",") if k]
    unknown = sorted(set(keys) - set(WORKLOADS))
    if unknown or not keys:
        print(f"error: --only: unknown workloads {unknown}; known: {sorted(WORKLOADS)}")
        return 2
    if args.cpu or not torch.cuda.is_available():
        return cpu_check(keys, args.cpu_size)
    return gpu_run(keys, args)


if __name__ == "__main__":
    raise SystemExit(main())
