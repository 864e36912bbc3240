"""Stream image or video shards through a WebDataset pipeline, for throughput-bound training.

:func:`make_wds_pipeline` shuffles shards (deterministically per epoch), splits them by node and
DataLoader worker, buffer-shuffles samples and decodes them. A sample that fails to decode and a
shard that cannot be read to its end (truncated, corrupt) are skipped, warned about with the shard
and key, and counted in a :class:`DecodeErrors`; they never stop the pipeline. Video samples of
either layout (a JPEG per frame, or one H.264 member) decode to the same frame list.

Images decode to uint8 RGB arrays ``(H, W, 3)`` or, with ``decode="torch"``, uint8 tensors
``(3, H, W)``.
"""

from __future__ import annotations

import json
import random
import re
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import webdataset as wds
from webdataset.filters import _shuffle
from webdataset.utils import make_seed, pytorch_worker_seed

from correlearn.data.decode import Decode, as_output, decode_image
from correlearn.data.sources import DataError

_FRAME = re.compile(r"^(\d+)\.jpg$")


def load_video(sample: dict[str, Any], decode: Decode = "numpy") -> list:
    """Decode every frame of a raw WebDataset video sample, in temporal order.

    Args:
        sample: the sample dict: ``"000000.jpg": bytes, ...`` (frames layout) or ``"h264": bytes``
            (encoded layout), and ``"json": bytes``.
        decode: ``"numpy"`` -> ``(H, W, 3)`` uint8 arrays, ``"torch"`` -> ``(3, H, W)`` uint8
            tensors, ``"bytes"`` -> the JPEG bytes (frames layout only).

    Returns:
        One entry per frame.
    """
    if "h264" in sample:
        if decode == "bytes":
            raise ValueError("an encoded video has no per-frame JPEG bytes; decode it")
        from correlearn.data.video_codec import decode_run  # PyAV only for this layout

        meta = json.loads(sample["json"])
        data, packets, at = memoryview(sample["h264"]), [], 0
        for n in meta["packet_sizes"]:
            packets.append(data[at : at + n])
            at += n
        frames = decode_run(packets, (meta["height"], meta["width"]))
        return [as_output(f, decode) for f in frames]
    names = sorted((int(m.group(1)), k) for k in sample if (m := _FRAME.match(k)))
    if decode == "bytes":
        return [sample[k] for _, k in names]
    return [as_output(decode_image(sample[k]), decode) for _, k in names]


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
                out["image"] = data if decode == "bytes" else as_output(decode_image(data), decode)
                out["label"] = int(meta.get("label", -1))
            elif "h264" in sample or any(_FRAME.match(k) for k in sample):
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
