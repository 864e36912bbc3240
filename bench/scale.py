"""Scale: wall time and peak memory of the ORL and evaluation stages at 1x / 4x / 16x, fitted slopes.

Every point runs in a fresh process (``scale_harness``): set-up untimed, then the library
calls the stage makes, timed, with the peak RSS of that part, its growth, the worker processes'
peak and the load average. The slope is the least-squares fit of log(seconds) on log(size) over
the three sizes (1 is linear, 2 quadratic), and again over the two largest sizes alone, where fixed
costs (model load, pool start-up, context fill) weigh least.

- images (``scale_stages``): ``image_shards`` (``write_image_shards``), ``embed`` (``embed_shard``
  + merge, a random-init BYOL ``pretrain_byol`` artifact), ``proposals`` (``propose_shard``:
  selective search + ORL filter, + merge) on real DAVIS frames, flipped copies where they run out;
- label propagation: ``propagate_sequence`` (VFS ResNet protocol, random-init ResNet-18 res4)
  over 1x / 4x / 16x frames of one sequence played ping-pong, split into features and the rest;
- kNN (``scale_knn``): exact (FAISS ``IndexFlatIP``, the ``neighbours`` stage's default) and IVF
  all-vs-all on Gaussian-mixture unit vectors, IVF's recall@10 against exact on every query, the
  two also at 1/8, 1/4 and 1/2 of 1x (where IVF takes over), ``torch.mm`` + ``topk`` at the largest
  size (ids compared), and a batch of queries against a large collection (``--full``: 100k and 1M
  vectors) with each index's build and search time.

``--quick`` (default, ``make bench``): 8 / 32 / 128 images at short side 160, 8 / 32 / 128 frames
at short side 160, kNN 2.5k / 10k / 40k, batch queries at 40k; 2.5 minutes on 2 cores at load 3,
6 at load 4. ``--full``: 16 / 64 / 256 images at DAVIS 480p with the stages' default settings
(embed 256 / 224 on the ORL ResNet-50 BYOL), 8 / 32 / 128 frames at short side 240 (the
protocol's 480 costs ~4x per frame), kNN 6.25k / 25k / 100k, batch queries at 100k and 1M;
10 minutes at load 2, 27 at load 5. The figures share the CPU with whatever else runs: the load
average is printed with every table, and they are noisy when it is above the core count. On a
busy machine prefer ``--threads 1``: OpenMP threads that wait for a core slow the small-op stages
most (label propagation of 128 frames at short side 160 took 11 s at load 2.5 and 110 s at
load 4 with 2 threads on 2 cores).

    python bench/scale.py [--quick | --full] [--base 8] [--frames 8] [--knn-base 2500] ...
"""

from __future__ import annotations

import argparse
import os
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from scale_harness import Row, baseline_mib, in_child, load_line, print_table
from scale_knn import DIM, print_knn, run_all_pairs, run_batches
from scale_stages import checkpoint_job, embed_job, lp_job, proposals_job, shards_job, source_items

FAMILIES = ("images", "lp", "knn")
#: A tiny BYOL for the tests (the backbone of tests/stages/test_orl_stages.py); the default is the
#: ORL stage-1 BYOL (``BYOLConfig()``: ResNet-50, projector 4096 -> 256).
TINY_BYOL = {
    "backbone": "resnet_test",
    "proj_hidden_dim": 64,
    "proj_dim": 32,
    "pred_hidden_dim": 64,
}


@dataclass(frozen=True)
class Settings:
    """Sizes and settings of one run (see the module docstring for the two presets)."""

    name: str = "quick"
    base: int = 8  # images at 1x
    image_side: int | None = 160  # image_shards max_short_side (None: original 480p JPEGs)
    embed_resize: int = 160
    embed_crop: int = 144
    long_side: int | None = 384  # proposals (the stage default)
    frames: int = 8  # frames at 1x
    lp_side: int = 160
    sequence: str = "bear"
    knn_base: int = 2500
    batch_sizes: tuple[int, ...] = (40_000,)
    queries: int = 2000
    tiny_byol: bool = False


QUICK = Settings()
FULL = Settings(name="full", base=16, image_side=None, embed_resize=256, embed_crop=224,
                lp_side=240, knn_base=6250, batch_sizes=(100_000, 1_000_000))  # fmt: skip


def sizes(base: int) -> list[int]:
    """1x, 4x, 16x."""
    return [base, 4 * base, 16 * base]


def _workers_note(points) -> str:
    if not any(p.workers_mib for p in points):
        return ""
    return (
        "worker processes' peak RSS " + " / ".join(f"{p.workers_mib:,.0f}" for p in points) + " MiB"
    )


def run_images(s: Settings, work: Path, threads: int) -> list[Row]:
    """image_shards, embed and proposals at the three image sizes."""
    ns = sizes(s.base)
    items = source_items(ns[-1], work)
    dirs = [str(work / f"shards-{n}") for n in ns]
    shards = [in_child(shards_job, n, items, d, s.image_side, threads=threads)
              for n, d in zip(ns, dirs, strict=True)]  # fmt: skip
    ckpt = str(work / "byol")
    in_child(checkpoint_job, 0, ckpt, TINY_BYOL if s.tiny_byol else {}, threads=threads)
    embed = [in_child(embed_job, n, d, ckpt, s.embed_resize, s.embed_crop, threads=threads)
             for n, d in zip(ns, dirs, strict=True)]  # fmt: skip
    props = [in_child(proposals_job, n, d, s.long_side, threads=threads)
             for n, d in zip(ns, dirs, strict=True)]  # fmt: skip
    mib = [p.extra[1] / 2**20 for p in shards]
    return [
        Row("image_shards", shards, note="shard bytes " + " / ".join(f"{m:.1f}" for m in mib)
            + " MiB"),
        Row("embed", embed, note=_workers_note(embed)),
        Row("proposals", props, note=_workers_note(props)),
    ]  # fmt: skip


def run_lp(s: Settings, threads: int) -> list[Row]:
    """Label propagation at the three frame counts, with features and propagation apart."""
    pts = [in_child(lp_job, n, s.sequence, s.lp_side, threads=threads) for n in sizes(s.frames)]
    feats = [p.extra[0] for p in pts]
    rest = [p.seconds - f for p, f in zip(pts, feats, strict=True)]
    pairs = [p.extra[1] for p in pts]
    per_pair = " / ".join(f"{r / c * 1e3:.1f}" for r, c in zip(rest, pairs, strict=True))
    note = (f"(target, context frame) pairs {' / '.join(f'{c:,}' for c in pairs)} (the context "
            f"fills up to m + 1 = 21 frames); propagation + masks per pair {per_pair} ms")  # fmt: skip
    return [
        Row("label propagation, total", pts),
        Row("label propagation: features", pts, memory=False, seconds=feats),
        Row("label propagation: propagation + masks", pts, memory=False, seconds=rest, note=note),
    ]


def parse(argv: list[str] | None) -> tuple[Settings, int, tuple[str, ...]]:
    """The settings of this run (a preset with the options' overrides), threads, families."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="a few minutes (default)")
    mode.add_argument("--full", action="store_true", help="480p, kNN to 100k, batch at 1M")
    ap.add_argument("--base", type=int, help="images at 1x")
    ap.add_argument("--frames", type=int, help="propagated frames at 1x")
    ap.add_argument("--knn-base", type=int, help="vectors at 1x for all-vs-all kNN")
    ap.add_argument("--batch-sizes", type=int, nargs="*", help="collections for batch queries")
    ap.add_argument("--queries", type=int, help="queries of the batch workload")
    ap.add_argument("--tiny-byol", action="store_true", help="a tiny BYOL for embed (tests)")
    ap.add_argument("--threads", type=int, default=os.cpu_count(), help="torch/FAISS threads")
    ap.add_argument("--only", default=",".join(FAMILIES), help="families, comma-separated")
    args = ap.parse_args(argv)
    only = tuple(args.only.split(","))
    if not set(only) <= set(FAMILIES):
        ap.error(f"--only: choose from {','.join(FAMILIES)}, got {args.only!r}")
    s = FULL if args.full else QUICK
    over = {k: getattr(args, k) for k in ("base", "frames", "knn_base", "queries")}
    s = replace(s, **{k: v for k, v in over.items() if v is not None})
    if args.batch_sizes is not None:
        s = replace(s, batch_sizes=tuple(args.batch_sizes))
    s = replace(s, tiny_byol=args.tiny_byol)
    return s, args.threads, only


def main(argv: list[str] | None = None) -> None:
    """Run the chosen families and print one table each, then the kNN table."""
    s, threads, only = parse(argv)
    print(f"bench/scale.py, {s.name} settings, "
          f"{threads} torch/FAISS threads; at start: {load_line()}. The CPU is shared: the "
          "figures are noisy, more so when the load is above the core count. Every point runs "
          f"in a fresh process whose RSS is {baseline_mib():.0f} MiB before its set-up "
          "(preloaded torch, FAISS, OpenCV): peaks include it, growth is the timed part's own.")  # fmt: skip
    if "images" in only:
        with tempfile.TemporaryDirectory(prefix="scale-") as tmp:
            rows = run_images(s, Path(tmp), threads)
        side = f"short side {s.image_side}" if s.image_side else "DAVIS 480p (original JPEGs)"
        byol = "tiny BYOL (resnet_test)" if s.tiny_byol else "ORL BYOL (ResNet-50)"
        print_table(f"Images: DAVIS frames at {side}; embed {s.embed_resize}/{s.embed_crop}, "
                    f"random-init {byol}, 2 loader workers; proposals long side {s.long_side}, "
                    "2 processes", rows)  # fmt: skip
    if "lp" in only:
        rows = run_lp(s, threads)
        print_table(f"Label propagation: {s.sequence} ping-pong, short side {s.lp_side}, VFS "
                    "ResNet protocol (m=20, k=10), random-init ResNet-18 res4 stride 8", rows)  # fmt: skip
    if "knn" in only:
        rows, info = run_all_pairs(sizes(s.knn_base), threads)
        print_table(f"kNN all-vs-all (the neighbours stage), K=10, {DIM}-d mixture vectors", rows)
        print_knn(info, run_batches(list(s.batch_sizes), s.queries, threads))


if __name__ == "__main__":
    main()
