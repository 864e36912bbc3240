"""Shard building at 1, 2 and 4 processes, bytes per video of each layout, reader decode speed.

On real DAVIS frames (854x480 JPEG, 24 fps), in one process tree:

- images/s of ``write_image_shards`` as stored (validate + copy the JPEG bytes) and resized to a
  256 short side (decode, resize, re-encode: what ImageNet at a capped size costs);
- videos/s of ``write_video_shards`` in the ``frames`` layout (as stored; and at a 256 short side)
  and the ``encoded`` layout (one H.264 member per video, 256 short side);
- at 1, 2 and 4 worker processes (the speed-up column is against 1 process of the same row; the
  workers' start-up is included: each is a fresh interpreter importing the shard writer and the
  main module, ~0.5-1 s);
- bytes per video and per frame of each layout, and frames/s of ``ShardedVideos`` reading random
  frame pairs (gap 4-24, as VFS/SiamMAE draw them) and whole videos, against the frames layout.

The machine's cores and load average are printed with the table: on a shared machine the figures
are noisy, and more processes than cores measures oversubscription, not scaling.

    python bench/shard_build.py [--root DIR] [--images 600] [--videos 8] [--workers 1,2,4]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from correlearn.data.shards import write_image_shards, write_video_shards
from correlearn.data.sources import DatasetSpec, list_images, list_videos

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data" / "davis2016-train"
DEFAULT_ROOT = SHARED if SHARED.is_dir() else REPO / "data" / "davis-mini"

IMAGE_ROWS = {"images, as stored": None, "images, short side 256": 256}
VIDEO_ROWS = {
    "videos, frames layout, as stored": ("frames", None),
    "videos, frames layout, short side 256": ("frames", 256),
    "videos, encoded layout, short side 256": ("encoded", 256),
}


def build_rates(items: list, rows: dict, workers: list[int], videos: bool) -> dict:
    """Items/s of each row at each worker count, and the summary of its 1-process build."""
    out = {}
    for name, opt in rows.items():
        rates, first = [], None
        for w in workers:
            with tempfile.TemporaryDirectory() as tmp:
                t0 = time.perf_counter()
                if videos:
                    layout, side = opt
                    s = write_video_shards(items, tmp, 1, side, False, w, layout=layout)
                else:
                    s = write_image_shards(items, tmp, 20, opt, False, w)
                rates.append(len(items) / (time.perf_counter() - t0))
                if first is None:
                    first = (s, _read_rates(tmp) if videos else None)
        out[name] = (rates, first)
    return out


def _read_rates(root: str) -> tuple[float, float]:
    """Frames/s of random pairs (gap 4-24) and of whole videos through ``ShardedVideos``."""
    # Imported here, not at the top: spawned workers import this module, and readers pulls in
    # torch (seconds of start-up per worker that would be timed as shard building).
    from correlearn.data.readers import ShardedVideos

    vids = ShardedVideos(root)
    rng = np.random.default_rng(0)
    n, t0 = 0, time.perf_counter()
    for _ in range(40):
        i = int(rng.integers(len(vids)))
        gap = int(rng.integers(4, 25))
        t = int(rng.integers(0, max(1, vids.n_frames[i] - gap)))
        vids.frames(i, [t, min(t + gap, vids.n_frames[i] - 1)])
        n += 2
    pairs = n / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    n = sum(len(vids[i]["frames"]) for i in range(min(3, len(vids))))
    return pairs, n / (time.perf_counter() - t0)


def print_build_table(results: dict, workers: list[int], unit: str) -> None:
    head = " | ".join(f"{w} proc" for w in workers)
    print(f"| build | {head} | speed-up at {workers[-1]} |")
    print("| --- |" + " ---: |" * (len(workers) + 1))
    for name, (rates, _) in results.items():
        cells = " | ".join(f"{r:.1f} {unit}/s" for r in rates)
        print(f"| {name} | {cells} | {rates[-1] / rates[0]:.2f}x |")


def print_layout_table(results: dict, n_frames: int) -> None:
    print("| layout | bytes / video | bytes / frame | random pairs, frames/s | whole videos, "
          "frames/s |")  # fmt: skip
    print("| --- | ---: | ---: | ---: | ---: |")
    base = None
    for name, (_, (summary, (pairs, whole))) in results.items():
        per_video = summary.n_bytes / summary.n_samples
        base = base or (per_video, pairs, whole)
        print(f"| {name.removeprefix('videos, ')} | {per_video / 1e6:.2f} MB "
              f"({per_video / base[0]:.2f}x) | {summary.n_bytes / n_frames / 1e3:.1f} kB | "
              f"{pairs:.0f} ({pairs / base[1]:.2f}x) | {whole:.0f} ({whole / base[2]:.2f}x) |")  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", default=str(DEFAULT_ROOT), help="a DAVIS-layout folder")
    ap.add_argument("--images", type=int, default=600, help="frames used as images")
    ap.add_argument("--videos", type=int, default=8, help="sequences used as videos")
    ap.add_argument("--workers", default="1,2,4", help="process counts, comma-separated")
    args = ap.parse_args(argv)
    if not Path(args.root).is_dir():
        print(f"error: --root: {args.root} is not a folder")
        raise SystemExit(2)
    workers = [int(w) for w in args.workers.split(",")]
    images = list_images(DatasetSpec(name="d", root=args.root, layout="davis",
                                     max_items=args.images))  # fmt: skip
    videos = list_videos(DatasetSpec(name="d", root=args.root, layout="davis",
                                     max_items=args.videos))  # fmt: skip
    n_frames = sum(len(v.frames) for v in videos)
    load0 = os.getloadavg()
    img = build_rates(images, IMAGE_ROWS, workers, videos=False)
    vid = build_rates(videos, VIDEO_ROWS, workers, videos=True)
    load1 = os.getloadavg()
    print(f"\n{os.cpu_count()} CPU cores; load average (1, 5, 15 min) {load0[0]:.2f} "
          f"{load0[1]:.2f} {load0[2]:.2f} before, {load1[0]:.2f} {load1[1]:.2f} {load1[2]:.2f} "
          "after (other processes share the cores: figures are noisy)")  # fmt: skip
    if max(workers) > (os.cpu_count() or 1):
        print(f"more processes than the {os.cpu_count()} cores: those columns measure "
              "oversubscription, not scaling")  # fmt: skip
    print(
        f"\n{len(images)} images (854x480 JPEG), 20 per shard; {len(videos)} videos, "
        f"{n_frames} frames (avg {n_frames / len(videos):.0f}), 1 per shard; one run each\n"
    )
    print_build_table(img, workers, "img")
    print()
    print_build_table(vid, workers, "videos")
    print()
    print_layout_table(vid, n_frames)


if __name__ == "__main__":  # worker processes are spawned: they import this module
    main()
