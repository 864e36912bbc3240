"""Benchmark ORL stage-2 mining: selective search proposals and image kNN.

(a) Selective search on real DAVIS-2016 frames (one frame from each of several sequences, 854x480),
    our stage (image resized to long side L, a process pool) against the reference behaviour (full
    resolution, one process): images/s, proposals per image, and recall of the ground-truth object
    box (bbox of the DAVIS mask) at IoU 0.5, over the raw proposals and after ORL's filter.
(b) kNN (K = 10, self excluded) over random L2-normalised embeddings: FAISS IndexFlatIP against the
    reference's torch.mm + topk, neighbour ids checked equal (up to float ties), plus IVF.

Run: .venv/bin/python bench/mining.py [--frames 12] [--long-sides 256 384 512] [--knn-n 20000]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import time
from pathlib import Path

import cv2
import numpy as np

from correlearn.data.box_ops import iou_matrix
from correlearn.mining.boxes import orl_filter
from correlearn.mining.proposals import gt_boxes_from_mask, propose_many, recall_at_iou

# torch and faiss are imported inside bench_knn: spawned selective-search workers re-import this
# script as __mp_main__, and a torch import there costs seconds per worker.

# <repo>/../shared/data, wherever the checkout lives.
DAVIS = Path(__file__).resolve().parents[2] / "shared" / "data" / "davis2016-train"


def load_frames(n: int) -> tuple[list[np.ndarray], np.ndarray, list[str]]:
    seqs = sorted(p.name for p in (DAVIS / "JPEGImages/480p").iterdir())
    pick = [seqs[int(i)] for i in np.linspace(0, len(seqs) - 1, n).round()]
    imgs, gts = [], []
    for s in pick:
        bgr = cv2.imread(str(DAVIS / "JPEGImages/480p" / s / "00000.jpg"))
        imgs.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        mask = cv2.imread(str(DAVIS / "Annotations/480p" / s / "00000.png"), cv2.IMREAD_GRAYSCALE)
        gts.append(gt_boxes_from_mask(mask > 0))
    return imgs, np.stack(gts), pick


def _noop(_: int) -> int:
    return 0


def pool_startup_s(processes: int) -> float:
    t = time.perf_counter()
    with mp.get_context("spawn").Pool(processes) as pool:
        pool.map(_noop, range(processes))
    return time.perf_counter() - t


def _best_iou(boxes: np.ndarray, gt: np.ndarray) -> float:
    return float(iou_matrix(gt[None], boxes).max()) if len(boxes) else 0.0


def run_proposals(imgs, gts, long_side, processes, startup_s):
    t = time.perf_counter()
    boxes = list(propose_many(imgs, long_side, processes=processes, progress=False))
    dt = time.perf_counter() - t
    filt = [orl_filter(b) for b in boxes]
    pairs = list(zip(boxes, filt, gts, strict=True))
    steady = dt - (startup_s if processes > 1 else 0.0)
    return {
        "img_s": len(imgs) / dt,
        "img_s_steady": len(imgs) / max(steady, 1e-9),
        "n_raw": np.mean([len(b) for b in boxes]),
        "n_filt": np.mean([len(f) for f in filt]),
        "recall_raw": np.mean([recall_at_iou(b, g[None]) for b, _, g in pairs]),
        "recall_filt": np.mean([recall_at_iou(f, g[None]) for _, f, g in pairs]),
        "iou_raw": np.mean([_best_iou(b, g) for b, _, g in pairs]),
        "iou_filt": np.mean([_best_iou(f, g) for _, f, g in pairs]),
    }


def bench_proposals(n_frames: int, long_sides: list[int | None], processes: int) -> None:
    imgs, gts, seqs = load_frames(n_frames)
    print(f"\n### Selective search (fast) on {len(imgs)} DAVIS frames 854x480: {', '.join(seqs)}\n")
    startup = pool_startup_s(processes)
    ref = run_proposals(imgs, gts, None, 1, startup)
    rows = [("reference: full res, 1 process", ref)]
    for ls in long_sides:
        name = f"ours: long side {ls or 'full (854)'}, {processes} processes"
        rows.append((name, run_proposals(imgs, gts, ls, processes, startup)))
    print(
        "| setting | img/s | img/s excl. pool start | speed-up (excl.) | proposals/img "
        "| kept by ORL filter/img | GT recall@0.5 raw / filtered | GT best IoU raw / filtered |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, r in rows:
        print(
            f"| {name} | {r['img_s']:.2f} | {r['img_s_steady']:.2f} "
            f"| {r['img_s_steady'] / ref['img_s_steady']:.1f}x | {r['n_raw']:.0f} "
            f"| {r['n_filt']:.1f} | {r['recall_raw']:.2f} / {r['recall_filt']:.2f} "
            f"| {r['iou_raw']:.3f} / {r['iou_filt']:.3f} |"
        )
    print(f"\nspawn pool start-up ({processes} workers, measured apart): {startup:.2f} s.")


def bench_knn(n: int, d: int, k: int) -> None:
    import faiss
    import torch

    from correlearn.mining.knn import default_nlist, ivf_recall_at_k, knn_search, torch_knn

    threads = faiss.omp_get_max_threads()
    torch.set_num_threads(threads)
    x = np.random.default_rng(0).standard_normal((n, d)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    t = time.perf_counter()
    sf, idf = knn_search(x, k=k, use_gpu=False)
    t_faiss = time.perf_counter() - t
    t = time.perf_counter()
    st, idt = torch_knn(x, k=k, device="cpu")
    t_torch = time.perf_counter() - t
    same = idf == idt
    # Where ids differ the two scores must be a float tie (BLAS summation order differs).
    assert np.allclose(sf[~same], st[~same], atol=1e-5), "kNN mismatch beyond float ties"
    nlist = default_nlist(n)
    t = time.perf_counter()
    knn_search(x, k=k, index="ivf", ivf_nlist=nlist, nprobe=32, use_gpu=False)
    t_ivf = time.perf_counter() - t
    rec = ivf_recall_at_k(x, k=k, nlist=nlist, nprobe=32, sample=1000, use_gpu=False)
    # Uniform vectors are IVF's worst case; real embeddings cluster. 200 synthetic clusters:
    rng = np.random.default_rng(1)
    c = rng.standard_normal((200, d)).astype(np.float32)
    xc = c[rng.integers(0, 200, n)] + 1.0 * rng.standard_normal((n, d)).astype(np.float32)
    xc /= np.linalg.norm(xc, axis=1, keepdims=True)
    rec_c = ivf_recall_at_k(xc, k=k, nlist=nlist, nprobe=32, sample=1000, use_gpu=False)
    print(
        f"\n### kNN, K={k}, self excluded: {n} x {d} random unit vectors, CPU, {threads} threads\n"
    )
    print("| method | queries/s | vs torch | recall@10 vs exact |")
    print("|---|---|---|---|")
    print(f"| torch.mm + topk (reference) | {n / t_torch:,.0f} | 1.0x | 1.000 |")
    print(f"| FAISS IndexFlatIP | {n / t_faiss:,.0f} | {t_torch / t_faiss:.1f}x | 1.000 |")
    print(
        f"| FAISS IVFFlat nlist={nlist} nprobe=32 (incl. training) | {n / t_ivf:,.0f} "
        f"| {t_torch / t_ivf:.1f}x | {rec:.3f} |"
    )
    print(f"\nIVF recall@10 (nprobe=32) on {n} vectors from 200 noisy clusters: {rec_c:.3f}.")
    print(
        f"\nFlat vs torch neighbour ids: {same.mean() * 100:.3f}% identical positions, "
        f"{same.all(axis=1).mean() * 100:.2f}% identical rows; all differences are float ties "
        f"(|score diff| <= 1e-5)."
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--frames", type=int, default=12)
    ap.add_argument(
        "--long-sides",
        type=int,
        nargs="+",
        default=[256, 384, 512],
        help="0 = full resolution in the pool (the reference row is always full res, 1 process)",
    )
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--knn-n", type=int, default=20000)
    ap.add_argument("--knn-d", type=int, default=256)
    ap.add_argument("--skip-proposals", action="store_true")
    ap.add_argument("--skip-knn", action="store_true")
    args = ap.parse_args()
    print(f"CPU cores visible: {os.cpu_count()}, cv2 {cv2.__version__}")
    if not args.skip_proposals:
        if not DAVIS.is_dir():
            raise SystemExit(f"error: {DAVIS}: DAVIS-2016 train split not found")
        bench_proposals(args.frames, [ls or None for ls in args.long_sides], args.processes)
    if not args.skip_knn:
        bench_knn(args.knn_n, args.knn_d, 10)


if __name__ == "__main__":
    main()
