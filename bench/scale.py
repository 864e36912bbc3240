"""Scale: wall time and peak memory of image_shards and kNN at 1x / 4x / 16x, with the fitted slope.

For each size the work runs in a forked child process, which reports its wall time and its peak
resident memory (``ru_maxrss``, the parent's pages included: compare the growth). The slope is
the least-squares fit of log(time) on log(size): 1 is linear, 2 quadratic (exact all-vs-all kNN
is N^2 by nature).

- ``image_shards``: ``write_image_shards`` of synthetic 256x192 JPEGs (the library call the stage
  makes), sizes ``base``, 4 ``base``, 16 ``base`` images;
- kNN exact (FAISS ``IndexFlatIP``) and IVF (``IndexIVFFlat``, nlist 4 sqrt N, nprobe 32) on unit
  vectors of 256 dims, all-vs-all, K = 10, with IVF's recall@10 against exact search (1000 sampled
  queries), and ``torch.mm`` + ``topk`` at the largest exact size.

``--quick`` (default) keeps the whole run to a few CPU-minutes (kNN at 2.5k / 10k / 40k);
``--full`` runs kNN at 6.25k / 25k / 100k (FAISS against torch.mm at 100k) and the IVF recall at
1M vectors, which takes most of an hour on 2 cores.

Not covered here yet: ``embed``, ``proposals`` and label propagation at three sizes.

    python bench/scale.py [--quick | --full] [--base 50]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np


def fitted_slope(sizes: list[int], seconds: list[float]) -> float:
    """Slope of log(seconds) against log(sizes) (least squares)."""
    return float(np.polyfit(np.log(sizes), np.log(seconds), 1)[0])


def _child(fn, args, queue) -> None:
    t0 = time.perf_counter()
    extra = fn(*args)
    queue.put((time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, extra))


def in_child(fn, *args):
    """Run ``fn(*args)`` in a forked process: (wall s, peak RSS MiB, fn's return value)."""
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(fn, args, queue))
    proc.start()
    sec, rss_kib, extra = queue.get()
    proc.join()
    return sec, rss_kib / 1024, extra


def unit_vectors(n: int, d: int, seed: int = 0) -> np.ndarray:
    """(n, d) float32 rows of norm 1, drawn from a seeded Gaussian."""
    x = np.random.default_rng(seed).standard_normal((n, d), dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def shards_job(n: int) -> int:
    from correlearn.data.shards import write_image_shards
    from correlearn.data.sources import DatasetSpec, list_images

    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "images"
        src.mkdir()
        for i in range(n):  # a few distinct images, so the JPEGs compress like photos, not noise
            img = cv2.GaussianBlur(rng.integers(0, 256, (192, 256, 3), dtype=np.uint8), (9, 9), 3)
            cv2.imwrite(str(src / f"{i:06d}.jpg"), img)
        items = list_images(DatasetSpec(name="s", root=str(src), layout="image_folder"))
        t0 = time.perf_counter()
        write_image_shards(items, Path(tmp) / "out", max_count_per_shard=1000, progress=False)
        return time.perf_counter() - t0


def knn_job(n: int, kind: str) -> None:
    from correlearn.mining.knn import knn_search, torch_knn

    emb = unit_vectors(n, 256)
    if kind == "torch":
        torch_knn(emb, 10, device="cpu")
    else:
        knn_search(emb, 10, index=kind, use_gpu=False)


def recall_job(n: int) -> float:
    from correlearn.mining.knn import ivf_recall_at_k

    return ivf_recall_at_k(unit_vectors(n, 256), k=10, use_gpu=False)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="a few CPU-minutes (default)")
    mode.add_argument("--full", action="store_true", help="kNN to 100k, IVF recall at 1M")
    ap.add_argument("--base", type=int, default=50, help="images at 1x for image_shards")
    args = ap.parse_args()
    knn_base = 6250 if args.full else 2500
    rows = []
    sizes = [args.base, 4 * args.base, 16 * args.base]
    res = [in_child(shards_job, n) for n in sizes]
    # The shard writer's own time (the JPEG generation is excluded); memory is the child's peak.
    rows.append(("image_shards (write)", sizes, [r[2] for r in res], [r[1] for r in res]))
    for kind in ("flat", "ivf"):
        ns = [knn_base, 4 * knn_base, 16 * knn_base]
        res = [in_child(knn_job, n, kind) for n in ns]
        rows.append((f"kNN {kind}, 256-d", ns, [r[0] for r in res], [r[1] for r in res]))
    print("\n| stage | sizes | seconds | peak RSS MiB | fitted slope |")
    print("|---|---|---|---|---:|")
    for name, ns, secs, mems in rows:
        print(f"| {name} | {' / '.join(f'{n:,}' for n in ns)} | "
              f"{' / '.join(f'{s:.2f}' for s in secs)} | {' / '.join(f'{m:.0f}' for m in mems)} | "
              f"{fitted_slope(ns, secs):.2f} |")  # fmt: skip
    n_cmp = 16 * knn_base
    flat_s = rows[1][2][-1]
    torch_s = in_child(knn_job, n_cmp, "torch")[0]
    print(f"\nkNN at {n_cmp:,} x 256, K=10, CPU: FAISS flat {n_cmp / flat_s:,.0f} q/s, torch.mm + "
          f"topk {n_cmp / torch_s:,.0f} q/s ({torch_s / flat_s:.2f}x)")  # fmt: skip
    for n in [n_cmp] + ([1_000_000] if args.full else []):
        sec, _, rec = in_child(recall_job, n)
        print(f"IVF recall@10 at {n:,} vectors (nlist {int(4 * n**0.5)}, nprobe 32): {rec:.3f} "
              f"({sec:.0f} s to build both indexes and search 1000 queries)")  # fmt: skip


if __name__ == "__main__":
    main()
