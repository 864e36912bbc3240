"""Data-loading throughput: WebDataset shards vs. a plain JPEG folder, on real DAVIS frames.

Prints samples/s, in one process, for the same images:
  1. shards -> wds pipeline (read + cv2 decode) + augmentation (random-resized-crop 224, flip,
     to tensor)
  2. JPEG files read one by one from their folder + the same decode + the same augmentation
  3. the same bytes already in memory, decode only (no augmentation): the decode ceiling
  4. shards -> ShardedImages random access (pread at indexed offsets) + decode + augmentation
and a markdown table with ratios against the folder baseline (2). Every path is run once untimed
first so that all files sit in the page cache: the figures compare formats, not disks. The paths
are timed in interleaved rounds and the best round is kept, so that load from other processes on
a shared machine biases no path in particular.

    python bench/data_throughput.py [--n 300] [--repeats 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from torchvision.transforms import v2

from correlearn.data.readers import ShardedImages, decode_image, make_wds_pipeline
from correlearn.data.shards import write_image_shards
from correlearn.data.sources import DatasetSpec, list_images

DAVIS = Path(__file__).resolve().parents[2] / "shared" / "data" / "davis2016-train"


def augmentation() -> v2.Compose:
    return v2.Compose(
        [
            v2.ToImage(),
            v2.RandomResizedCrop(224, antialias=True),
            v2.RandomHorizontalFlip(),
            v2.ToDtype(torch.float32, scale=True),
        ]
    )


def timed(paths: dict, repeats: int) -> dict[str, float]:
    """Best samples/s of each path (a function returning its count) over interleaved rounds."""
    for fn in paths.values():
        fn()  # warm-up: page cache, lazy imports, allocator
    best = dict.fromkeys(paths, 0.0)
    for _ in range(repeats):
        for name, fn in paths.items():
            t0 = time.perf_counter()
            n = fn()
            best[name] = max(best[name], n / (time.perf_counter() - t0))
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", default=str(DAVIS))
    ap.add_argument("--n", type=int, default=300, help="number of frames")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1, help="torch/OpenCV threads")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    torch.manual_seed(0)

    spec = DatasetSpec(name="davis", root=args.root, layout="davis", frame_step=6, max_items=args.n)
    items = list_images(spec)
    paths = [it.path for it in items]
    aug = augmentation()
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        summary = write_image_shards(items, tmp, max_count_per_shard=100, progress=False)
        write_s = time.perf_counter() - t0
        shards = [Path(tmp) / s for s in summary.shards]
        in_memory = [Path(p).read_bytes() for p in paths]

        def wds_path() -> int:
            pipe = make_wds_pipeline(
                shards, shuffle_buffer=100, seed=0, map_fn=lambda s: aug(s["image"])
            )
            return sum(1 for _ in pipe)

        def folder_path() -> int:
            for p in paths:
                aug(decode_image(Path(p).read_bytes()))
            return len(paths)

        def decode_only() -> int:
            for data in in_memory:
                decode_image(data)
            return len(in_memory)

        ds = ShardedImages(tmp)
        w, h = ds.table["width"][0].as_py(), ds.table["height"][0].as_py()
        order = np.random.default_rng(0).permutation(len(ds))

        def random_access() -> int:
            for i in order:
                aug(ds[int(i)]["image"])
            return len(order)

        rates = timed(
            {
                "1. shards, wds pipeline + decode + aug": wds_path,
                "2. JPEG folder + decode + aug (baseline)": folder_path,
                "3. bytes in memory, decode only": decode_only,
                "4. shards, ShardedImages random access + decode + aug": random_access,
            },
            args.repeats,
        )
    rows = list(rates.items())
    base = rows[1][1]
    print(
        f"\n{len(items)} DAVIS frames ({w}x{h} JPEG, {summary.n_bytes / 1e6:.1f} MB in "
        f"{len(shards)} shards, written in {write_s:.1f} s), {args.threads} thread(s), "
        f"best of {args.repeats}\n"
    )
    print("| path | samples/s | vs folder |")
    print("| --- | ---: | ---: |")
    for name, rate in rows:
        print(f"| {name} | {rate:.1f} | {rate / base:.2f}x |")


if __name__ == "__main__":
    main()
