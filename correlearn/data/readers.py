"""Read the shards written by :mod:`correlearn.data.shards`.

Two access paths:

- :func:`make_wds_pipeline`: a streaming WebDataset pipeline (shard shuffling, node/worker
  splitting, buffer shuffling, decoding) for throughput-bound training. A sample that fails to
  decode and a shard that cannot be read to its end (truncated, corrupt) are skipped, warned about
  with the shard and key, and counted in a :class:`DecodeErrors`; they never stop the pipeline.
- :class:`ShardedImages` / :class:`ShardedVideos`: map-style random access by position or key,
  reading the JPEG members at the byte offsets stored in ``index.parquet`` (``os.pread``, no tar
  scan). Training stages use these for batches that are a pure function of (seed, step).

Images decode to uint8 RGB arrays ``(H, W, 3)`` or, with ``decode="torch"``, uint8 tensors
``(3, H, W)``. EXIF orientation is ignored, as PIL and torchvision's loader do.
"""

from __future__ import annotations

import json
import os
import random
import re
import tarfile
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
import pyarrow.parquet as pq
import torch
import webdataset as wds
from webdataset.filters import _shuffle
from webdataset.utils import make_seed, pytorch_worker_seed

from correlearn.data.sources import DataError

Decode = Literal["numpy", "torch", "bytes"]
_FRAME = re.compile(r"^(\d+)\.jpg$")


def decode_image(data: bytes) -> np.ndarray:
    """Decode JPEG/PNG bytes to a uint8 RGB array ``(H, W, 3)``; ValueError when undecodable."""
    flags = cv2.IMREAD_COLOR_RGB | cv2.IMREAD_IGNORE_ORIENTATION
    arr = cv2.imdecode(np.frombuffer(data, np.uint8), flags) if data else None
    if arr is None:
        raise ValueError(f"cannot decode image ({len(data)} bytes)")
    return arr


def _convert(arr: np.ndarray, decode: Decode) -> Any:
    # (H, W, 3) -> (3, H, W) without a copy; default_collate stacks it.
    return torch.from_numpy(arr).permute(2, 0, 1) if decode == "torch" else arr


def load_video(sample: dict[str, Any], decode: Decode = "numpy") -> list:
    """Decode every frame of a raw WebDataset video sample, in temporal order.

    Args:
        sample: the sample dict (``"000000.jpg": bytes, ...``, ``"json": bytes``).
        decode: ``"numpy"`` -> ``(H, W, 3)`` uint8 arrays, ``"torch"`` -> ``(3, H, W)`` uint8
            tensors, ``"bytes"`` -> the JPEG bytes.

    Returns:
        One entry per frame.
    """
    names = sorted((int(m.group(1)), k) for k in sample if (m := _FRAME.match(k)))
    if decode == "bytes":
        return [sample[k] for _, k in names]
    return [_convert(decode_image(sample[k]), decode) for _, k in names]


class _SampleError(Exception):
    def __init__(self, key: str, shard: str, reason: str):
        super().__init__(f"sample {key!r} in {shard}: {reason}")
        self.key, self.shard, self.reason = key, shard, reason


class DecodeErrors:
    """Exception handler for the pipeline: warns, records and counts, then lets it continue.

    Counts are per process: with DataLoader workers each worker has its own copy (the warnings still
    reach the log); read them in-process (``num_workers=0``) or from the warnings.

    Attributes:
        n_samples: samples dropped because they failed to decode (missing or corrupt image).
        n_shard_errors: read errors at the tar level (truncated or corrupt shard).
        records: ``(kind, shard, key, reason)`` for the first ``max_records`` events.
    """

    def __init__(self, max_records: int = 1000):
        self.n_samples = 0
        self.n_shard_errors = 0
        self.records: list[tuple[str, str, str, str]] = []
        self.max_records = max_records

    @property
    def total(self) -> int:
        """All events, samples and shard errors."""
        return self.n_samples + self.n_shard_errors

    def __call__(self, exn: Exception) -> bool:
        """Record ``exn`` and return True (continue); used as a webdataset ``handler``."""
        if isinstance(exn, _SampleError):
            self.n_samples += 1
            rec = ("sample", exn.shard, exn.key, exn.reason)
        else:
            self.n_shard_errors += 1
            # webdataset appends the shard url to the args, or the stream to the message.
            urls = [a for a in exn.args[1:] if isinstance(a, str)]
            msg = str(exn.args[0]) if exn.args else str(exn)
            named = re.search(r"name='([^']+)'", msg)
            shard = urls[-1] if urls else named.group(1) if named else "?"
            rec = ("shard", shard, "", f"{type(exn).__name__}: {msg.split(' @ ')[0]}")
        if len(self.records) < self.max_records:
            self.records.append(rec)
        what = f"sample {rec[2]!r} of shard" if rec[0] == "sample" else "rest of shard"
        warnings.warn(f"skipped {what} {rec[1]}: {rec[3]}", stacklevel=2)
        return True


def _decode_sample(decode: Decode | Callable[[dict], dict]) -> Callable[[dict], dict]:
    def fn(sample: dict) -> dict:
        key, shard = sample.get("__key__", "?"), sample.get("__url__", "?")
        try:
            if callable(decode):
                return decode(sample)
            meta = json.loads(sample["json"])
            out = {"key": meta.get("key", key), "__key__": key, "__url__": shard}
            if "jpg" in sample:
                data = sample["jpg"]
                out["image"] = data if decode == "bytes" else _convert(decode_image(data), decode)
                out["label"] = int(meta.get("label", -1))
            elif any(_FRAME.match(k) for k in sample):
                frames = load_video(sample, decode)
                if len(frames) != meta["n_frames"]:
                    raise ValueError(f"{len(frames)} frames, json says {meta['n_frames']}")
                out.update(frames=frames, fps=float(meta["fps"]))
            else:
                raise ValueError(f"no image or frames among {sorted(sample)}")
            return out
        except Exception as exc:
            raise _SampleError(key, shard, f"{type(exc).__name__}: {exc}") from exc

    return fn


class _WorkerShuffle(wds.PipelineStage):
    """Buffer shuffle seeded by (seed, epoch, rank/worker) so every worker draws its own order."""

    def __init__(self, bufsize: int, seed: int):
        self.bufsize, self.seed, self.epoch = bufsize, seed, -1

    def run(self, src):
        self.epoch += 1
        rng = random.Random(make_seed(self.seed, self.epoch, pytorch_worker_seed()))
        return _shuffle(src, self.bufsize, min(self.bufsize, 100), rng)


def make_wds_pipeline(
    shard_paths: Sequence[str | Path],
    shuffle_buffer: int = 1000,
    seed: int = 0,
    resampled: bool = False,
    epoch_length: int | None = None,
    decode: Decode | Callable[[dict], dict] = "numpy",
    map_fn: Callable[[dict], Any] | None = None,
    errors: DecodeErrors | None = None,
) -> wds.DataPipeline:
    """A WebDataset pipeline over image or video shards.

    Shards are shuffled (deterministically from ``seed`` and the epoch, identically on every
    node), split by node then by DataLoader worker; with ``resampled`` each worker instead draws
    shards with replacement forever (use ``epoch_length``). Samples are buffer-shuffled, then
    decoded.

    Args:
        shard_paths: tar files.
        shuffle_buffer: samples in the shuffle buffer; 0 keeps shard order and does not shuffle
            shards either (evaluation).
        seed: base seed for shard order and buffer shuffling.
        resampled: sample shards with replacement (infinite stream).
        epoch_length: samples per epoch per worker (``with_epoch``); None = one pass.
        decode: ``"numpy"``/``"torch"``/``"bytes"``, or a function of the raw sample. Built-in
            decoders give ``{"image", "label", "key"}`` for images and ``{"frames", "fps", "key"}``
            for videos, plus ``__key__`` and ``__url__`` (the shard).
        map_fn: applied to each decoded sample (augmentation); its errors are not swallowed.
        errors: the handler that counts skipped samples/shards (a new one if None).

    Returns:
        The pipeline (an ``IterableDataset``), with the handler as attribute ``errors``.
    """
    urls = [str(p) for p in shard_paths]
    if not urls:
        raise DataError("make_wds_pipeline: no shard paths given")
    errors = errors if errors is not None else DecodeErrors()
    if resampled:
        stages: list = [wds.ResampledShards(urls, seed=seed, deterministic=True)]
    else:
        stages = [wds.SimpleShardList(urls)]
        if shuffle_buffer > 0:
            stages.append(wds.detshuffle(len(urls), len(urls), seed=seed))
        stages += [wds.split_by_node, wds.split_by_worker]
    stages.append(wds.tarfile_to_samples(handler=errors))
    if shuffle_buffer > 0:
        stages.append(_WorkerShuffle(shuffle_buffer, seed))
    stages.append(wds.map(_decode_sample(decode), handler=errors))
    if map_fn is not None:
        stages.append(wds.map(map_fn))
    pipeline = wds.DataPipeline(*stages)
    if epoch_length is not None:
        pipeline = pipeline.with_epoch(epoch_length)
    pipeline.errors = errors
    return pipeline


def scan_shard(path: str | Path) -> dict[str, tuple[int, int]]:
    """Byte span ``(offset, size)`` of every member of a tar; DataError if it cannot be read."""
    try:
        with tarfile.open(path, "r:") as tar:
            return {ti.name: (ti.offset_data, ti.size) for ti in tar}
    except (OSError, tarfile.TarError) as exc:
        raise DataError(f"cannot read shard {path}: {exc}") from exc


class _ShardFiles:
    """Index table + lazily opened shard files; safe across fork and pickling (fds not shared)."""

    def __init__(self, root: str | Path):
        path = Path(root)
        self.index_path = path / "index.parquet" if path.is_dir() else path
        if not self.index_path.is_file():
            raise DataError(f"no shard index at {self.index_path}")
        self.dir = self.index_path.parent
        self.table = pq.read_table(self.index_path)
        self.keys = self.table.column("key").to_pylist()
        self.shards = self.table.column("shard").to_pylist()
        self._check_shard_paths()
        self._pos: dict[str, int] | None = None  # built on first lookup: large for big datasets
        self._fds: dict[str, int] = {}
        self._pid = os.getpid()

    def _check_shard_paths(self) -> None:
        # An index is data, not code: a row naming "../../x.tar" or "/etc/x" must not make the
        # reader open files outside the artifact folder.
        inside = self.dir.resolve()
        for shard in sorted(set(self.shards)):
            target = (self.dir / shard).resolve()
            if not target.is_relative_to(inside) or target == inside:
                raise DataError(
                    f"{self.index_path}: shard path {shard!r} resolves outside the artifact "
                    f"folder ({target}); refusing to read it"
                )

    def __len__(self) -> int:
        return len(self.keys)

    def position(self, key: str) -> int:
        """Row of ``key`` in the index; KeyError if absent, DataError if two rows share it."""
        if self._pos is None:
            pos = {k: i for i, k in enumerate(self.keys)}
            if len(pos) != len(self.keys):
                dup = next(k for i, k in enumerate(self.keys) if pos[k] != i)
                raise DataError(f"{self.index_path}: two rows share the item key {dup!r}")
            self._pos = pos
        return self._pos[key]

    def _decode(self, data: bytes, i: int, what: str) -> np.ndarray:
        try:
            return decode_image(data)
        except ValueError as exc:
            raise DataError(
                f"{self.dir / self.shards[i]}: {what} of sample {self.keys[i]!r}: {exc}"
            ) from None

    def _read(self, shard: str, offset: int, size: int) -> bytes:
        if self._pid != os.getpid():  # forked DataLoader worker: never share the parent's offsets
            self._fds, self._pid = {}, os.getpid()
        fd = self._fds.get(shard)
        if fd is None:
            fd = self._fds[shard] = os.open(self.dir / shard, os.O_RDONLY)
        data = os.pread(fd, size, offset)
        if len(data) != size:
            raise DataError(f"shard {self.dir / shard} is truncated at byte {offset}")
        return data

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_fds": {}}

    def __del__(self):
        for fd in getattr(self, "_fds", {}).values():
            os.close(fd)


class ShardedImages(_ShardFiles):
    """Random access to an image shard set: ``ds[i] -> {"image", "label", "key", "index"}``.

    Args:
        root: the shard folder or its ``index.parquet``.
        decode: ``"numpy"`` (``(H, W, 3)`` uint8), ``"torch"`` (``(3, H, W)`` uint8) or ``"bytes"``.
    """

    def __init__(self, root: str | Path, decode: Decode = "numpy"):
        super().__init__(root)
        self.decode = decode
        self.labels = np.asarray(self.table.column("label").to_numpy(), dtype=np.int64)
        if "offset" in self.table.column_names:
            self.offsets = self.table.column("offset").to_numpy()
            self.sizes = self.table.column("size").to_numpy()
        else:  # an index without offsets: find them once by scanning the tar headers
            wkeys = self.table.column("wds_key").to_pylist()
            spans = {s: scan_shard(self.dir / s) for s in sorted(set(self.shards))}
            found = [spans[s][f"{k}.jpg"] for s, k in zip(self.shards, wkeys, strict=True)]
            self.offsets, self.sizes = (
                np.array(c, dtype=np.int64) for c in zip(*found, strict=True)
            )

    def read_bytes(self, i: int) -> bytes:
        """The stored JPEG bytes of sample ``i``."""
        return self._read(self.shards[i], int(self.offsets[i]), int(self.sizes[i]))

    def __getitem__(self, i: int) -> dict[str, Any]:
        data = self.read_bytes(i)
        image = (
            data
            if self.decode == "bytes"
            else _convert(self._decode(data, i, "image"), self.decode)
        )
        return {"image": image, "label": int(self.labels[i]), "key": self.keys[i], "index": i}


class ShardedVideos(_ShardFiles):
    """Random access to a video shard set; single frames are read without decoding the others.

    Args:
        root: the shard folder or its ``index.parquet``.
        decode: ``"numpy"`` (frames ``(H, W, 3)`` uint8) or ``"torch"`` (``(3, H, W)`` uint8).
    """

    def __init__(self, root: str | Path, decode: Decode = "numpy"):
        super().__init__(root)
        self.decode = decode
        self.n_frames = self.table.column("n_frames").to_numpy()
        self.fps = self.table.column("fps").to_numpy()
        offs = self.table.column("frame_offsets").combine_chunks()
        sizes = self.table.column("frame_sizes").combine_chunks()
        # Flat arrays + row starts: compact for millions of frames, cheap to pickle to workers.
        self._starts = offs.offsets.to_numpy()
        self._offsets = offs.values.to_numpy()
        self._sizes = sizes.values.to_numpy()

    def frame_bytes(self, i: int, t: int) -> bytes:
        """JPEG bytes of frame ``t`` of video ``i``."""
        if not 0 <= t < self.n_frames[i]:
            raise IndexError(f"frame {t} of {self.keys[i]!r} ({self.n_frames[i]} frames)")
        j = self._starts[i] + t
        return self._read(self.shards[i], int(self._offsets[j]), int(self._sizes[j]))

    def frame(self, i: int, t: int) -> Any:
        """Frame ``t`` of video ``i``: ``(H, W, 3)`` array or ``(3, H, W)`` tensor, uint8."""
        data = self.frame_bytes(i, t)
        if self.decode == "bytes":
            return data
        return _convert(self._decode(data, i, f"frame {t}"), self.decode)

    def frames(self, i: int, ts: Sequence[int]) -> Any:
        """Frames ``ts`` of video ``i``, stacked: ``(T, H, W, 3)`` array or ``(T, 3, H, W)``."""
        out = [self.frame(i, int(t)) for t in ts]
        return torch.stack(out) if self.decode == "torch" else np.stack(out)

    def __getitem__(self, i: int) -> dict[str, Any]:
        frames = self.frames(i, range(int(self.n_frames[i])))
        return {"frames": frames, "fps": float(self.fps[i]), "key": self.keys[i], "index": i}
