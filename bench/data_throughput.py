"""Training data path: the shard pipeline with augmentation against plain full-size JPEG decode.

The same JPEGs (DAVIS frames, 854x480) through, in one process:

  0. baseline: the bytes already in memory, full-size decode only (OpenCV / libjpeg-turbo), no
     crop, no augmentation: the ceiling every pipeline is compared with;
  1. shards, random access by byte offset (``ShardedImages``, what the training stages read),
     full-size decode, then our random-resized crop + flip + normalise (``data/augment.py``);
  2. the same with reduced-size decode through the reader option the training stages pass,
     ``ShardedImages(root, decode="lazy")`` (``data/decode.py``: the crop box is drawn from the header,
     the JPEG decoded at 1/2, 1/4 or 1/8 by DCT scaling where the crop stays at least the output
     size, the box cut at its exact position);
  3. the WebDataset pipeline (sequential tar reads) with the decode + augmentation of 2;
  4. path 2 in batches of 32 from ``make_step_loader`` with ``--workers`` DataLoader processes and
     pinned memory (pinning needs CUDA; on CPU it is skipped with a warning), per core, in steady
     state (timed from the first batch on: worker start-up is a one-off cost of a run);
  5. BYOL's ``method.decode: device``: batches of 32 decoded in one ``decode_jpeg`` call on the
     training device (nvJPEG on CUDA, libjpeg-turbo on the CPU), cropped, flipped and normalised
     there (a synchronised wall clock on CUDA).

At two output sides: 224 (BYOL, ORL, VFS, SiamMAE) and 96 (the CPU demo). Decode at reduced
size only helps when the crop is at least twice the output: at 224 from 480p frames that is rare,
at 96 it is most crops (the table says which share of crops used which scale). The paths are
timed in interleaved rounds and the best round kept, so that load from other processes on a
shared machine biases no path in particular; every path runs once untimed first (page cache).

    python bench/data_throughput.py [--root DIR] [--n 300] [--repeats 2] [--sizes 224,96]
                                    [--workers 2]
"""

from __future__ import annotations

import argparse
import collections
import os
import tempfile
import time
import warnings
from pathlib import Path

import cv2
import numpy as np
import torch

from correlearn.data.augment import hflip, normalize, random_resized_crop
from correlearn.data.decode import EncodedImage, decode_image, decode_on_device
from correlearn.data.readers import ShardedImages
from correlearn.data.shards import write_image_shards
from correlearn.data.sources import DatasetSpec, list_images
from correlearn.data.step_loader import make_step_loader
from correlearn.data.wds_pipeline import make_wds_pipeline

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data" / "davis2016-train"
DEFAULT_ROOT = SHARED if SHARED.is_dir() else REPO / "data" / "davis-mini"


class Rate(float):
    """Items/s a path measured itself (a count returned instead is timed here)."""


def timed(paths: dict, repeats: int) -> dict[str, float]:
    """Best items/s of each path over interleaved rounds.

    A path returns its item count (timed here, whole) or a :class:`Rate` it measured itself.
    """
    for fn in paths.values():
        fn()  # warm-up: page cache, lazy imports, allocator, worker start-up
    best = dict.fromkeys(paths, 0.0)
    for _ in range(repeats):
        for name, fn in paths.items():
            t0 = time.perf_counter()
            n = fn()
            rate = n if isinstance(n, Rate) else n / (time.perf_counter() - t0)
            best[name] = max(best[name], rate)
    return best


def full_view(data: bytes, rng: np.random.Generator, size: int) -> torch.Tensor:
    """Full-size decode, random-resized crop, flip, normalise: (3, S, S) float."""
    img = torch.from_numpy(decode_image(data)).permute(2, 0, 1)
    return normalize(hflip(random_resized_crop(img, rng, size), 0.5, rng))


def reduced_view(
    img: EncodedImage, rng: np.random.Generator, size: int, scales=None
) -> torch.Tensor:
    """Path 2: the same draws, decoded at reduced size where the crop allows."""
    crop, s = img.random_resized_crop(rng, size)
    if scales is not None:
        scales[s] += 1
    return normalize(hflip(crop, 0.5, rng))


def paths_for(size: int, ds: ShardedImages, shards: list[Path], blobs: list[bytes], workers: int,
              scales: collections.Counter) -> dict:  # fmt: skip
    order = np.random.default_rng(0).permutation(len(ds))
    lazy = ShardedImages(ds.dir, decode="lazy")  # the reader option the training stages pass

    def decode_only() -> int:
        for data in blobs:
            decode_image(data)
        return len(blobs)

    def shards_full() -> int:
        rng = np.random.default_rng(1)
        for i in order:
            full_view(ds.read_bytes(int(i)), rng, size)
        return len(order)

    def shards_reduced() -> int:
        rng = np.random.default_rng(1)
        for i in order:
            reduced_view(lazy[int(i)]["image"], rng, size, scales)
        return len(order)

    def wds_reduced() -> int:
        rng = np.random.default_rng(1)
        pipe = make_wds_pipeline(shards, shuffle_buffer=100, seed=0, decode="bytes",
                                 map_fn=lambda s: reduced_view(EncodedImage(s["image"]), rng, size))  # fmt: skip
        return sum(1 for _ in pipe)

    batch = 32
    # Three passes' worth of steps; the first batch (worker start-up) is left out of the timing.
    steps = max(2, 3 * len(ds) // batch)

    def build(step, rng, gen):
        idx = rng.integers(0, len(ds), size=batch)
        return {"x": torch.stack([reduced_view(lazy[int(i)]["image"], rng, size) for i in idx])}

    def loader() -> float:
        """Steady-state img/s: the clock starts when the first batch (worker start-up) arrived."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pin_memory without CUDA
            it = make_step_loader(build, seed=0, num_steps=steps, num_workers=workers,
                                  pin_memory=torch.cuda.is_available() or workers > 0)  # fmt: skip
            next(it)
            t0 = time.perf_counter()
            n = sum(len(b["x"]) for b in it)
            return Rate(n / (time.perf_counter() - t0))

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

    def on_device() -> int:
        """BYOL's ``decode: device``: each batch decoded in one call, then cropped there."""
        rng = np.random.default_rng(1)
        for s in range(0, len(order), batch):
            imgs = decode_on_device([ds.read_bytes(int(i)) for i in order[s : s + batch]], device)
            torch.stack([normalize(hflip(random_resized_crop(im, rng, size), 0.5, rng))
                         for im in imgs])  # fmt: skip
        if device.type == "cuda":
            torch.cuda.synchronize()
        return len(order)

    out = {
        "0. bytes in memory, full-size decode only (baseline)": decode_only,
        "1. shards, random access, full decode + crop/flip/normalise": shards_full,
        "2. shards, random access (decode='lazy'), reduced decode + crop/flip/normalise": shards_reduced,
        "3. shards, WebDataset pipeline, reduced decode + aug": wds_reduced,
    }
    if workers > 0:
        out[f"4. path 2 in a DataLoader, {workers} workers, pinned; per core"] = loader
    out[f"5. shards, batches of {batch} decoded in one call on {device.type} (torchvision"
        f"{', nvJPEG' if device.type == 'cuda' else ''}) + crop/flip/normalise there"] = on_device  # fmt: skip
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", default=str(DEFAULT_ROOT), help="a DAVIS-layout folder")
    ap.add_argument("--n", type=int, default=300, help="number of frames")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--sizes", default="224,96", help="output sides, comma-separated")
    ap.add_argument("--workers", type=int, default=2, help="DataLoader workers of path 4 (0: skip)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    if not Path(args.root).is_dir():
        print(f"error: --root: {args.root} is not a folder")
        raise SystemExit(2)
    spec = DatasetSpec(name="davis", root=args.root, layout="davis", frame_step=1,
                       max_items=args.n)  # fmt: skip
    items = list_images(spec)
    blobs = [Path(it.path).read_bytes() for it in items]
    cores = min(args.workers, os.cpu_count() or 1)
    with tempfile.TemporaryDirectory() as tmp:
        summary = write_image_shards(items, tmp, max_count_per_shard=100, progress=False)
        shards = [Path(tmp) / s for s in summary.shards]
        ds = ShardedImages(tmp)
        w, h = ds.table["width"][0].as_py(), ds.table["height"][0].as_py()
        for size in [int(s) for s in args.sizes.split(",") if s]:
            scales: collections.Counter = collections.Counter()
            rates = timed(paths_for(size, ds, shards, blobs, args.workers, scales), args.repeats)
            base = next(iter(rates.values()))
            share = ", ".join(
                f"1/{k}: {v / sum(scales.values()):.0%}" for k, v in sorted(scales.items())
            )
            load = " ".join(f"{x:.2f}" for x in os.getloadavg())
            print(f"\n{len(items)} frames ({w}x{h} JPEG), output {size}x{size}, 1 thread per "
                  f"process, best of {args.repeats}; reduced decode used {share}; "
                  f"{os.cpu_count()} cores, load average {load} (shared machine: noisy)\n")  # fmt: skip
            print("| path | img/s | vs decode only |")
            print("| --- | ---: | ---: |")
            for name, rate in rates.items():
                if name.startswith("4."):
                    rate /= cores
                print(f"| {name} | {rate:.1f} | {rate / base:.2f}x |")


if __name__ == "__main__":
    main()
