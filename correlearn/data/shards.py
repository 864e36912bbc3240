"""Write images and videos as WebDataset tar shards plus a parquet index, one output shard at a time.

Sample layout (one tar member per field, named ``<wds_key>.<field>``):

- image sample: ``<wds_key>.jpg`` (JPEG bytes) and ``<wds_key>.json``
  (``{"key", "label", "width", "height", "source", "dataset"}``).
- video sample, ``frames`` layout (the default): ``<wds_key>.000000.jpg``, ``<wds_key>.000001.jpg``,
  ... (one JPEG per frame, in temporal order) and ``<wds_key>.json`` (``{"key", "fps", "n_frames",
  "width", "height", "source", "dataset"}``). WebDataset groups these into one sample dict with keys
  ``"000000.jpg"``, ...; any tar tool can extract single frames, and a frame can be read without
  decoding the others.
- video sample, ``encoded`` layout: ``<wds_key>.h264``, the whole video as one raw H.264 stream
  (:mod:`correlearn.data.video_codec`), and the json with also ``"codec"``, ``"gop"`` and
  ``"packet_sizes"``; the index adds columns ``codec`` and ``gop``.

``wds_key`` is the item key made safe for WebDataset (:func:`~correlearn.data.prepare.sanitize_keys`);
the original key stays in the json and the index. ``index.parquet`` has one row per sample with the
byte spans of its JPEG members (or, encoded, of each frame's H.264 packet inside the member), so
random access (``readers.ShardedImages``/``ShardedVideos``) never scans the tars.

Shards hold ``shard_size`` source items each (fewer where inputs are skipped) and are written as
independent units (:mod:`correlearn.data.shard_build`): in parallel, resumably, and with the same
bytes whatever the number of worker processes. Only ``out_dir`` is written.
"""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO, Literal

import pyarrow as pa

from correlearn.data.prepare import BadInput, prepare_jpeg
from correlearn.data.shard_build import (
    ShardPlan,
    ShardSummary,
    merge,
    part_file,
    run_units,
    scan_shard,
    shard_name,
    write_atomic,
    write_plan,
)
from correlearn.data.sources import ImageItem, VideoItem
from correlearn.data.video_frames import read_video, video_source

Layout = Literal["frames", "encoded"]

IMAGE_SCHEMA = pa.schema(
    [("key", pa.string()), ("wds_key", pa.string()), ("shard", pa.string()),
     ("label", pa.int64()), ("width", pa.int32()), ("height", pa.int32()),
     ("source", pa.string()), ("dataset", pa.string()),
     ("offset", pa.int64()), ("size", pa.int64())]
)  # fmt: skip
VIDEO_SCHEMA = pa.schema(
    [("key", pa.string()), ("wds_key", pa.string()), ("shard", pa.string()),
     ("n_frames", pa.int64()), ("fps", pa.float64()), ("width", pa.int32()),
     ("height", pa.int32()), ("source", pa.string()), ("dataset", pa.string()),
     ("frame_offsets", pa.list_(pa.int64())), ("frame_sizes", pa.list_(pa.int64()))]
)  # fmt: skip
ENCODED_VIDEO_SCHEMA = VIDEO_SCHEMA.append(pa.field("codec", pa.string())).append(
    pa.field("gop", pa.int32())
)


def index_schema(options: dict) -> pa.Schema:
    """The index schema of a build with these write options."""
    if options["kind"] == "images":
        return IMAGE_SCHEMA
    return ENCODED_VIDEO_SCHEMA if options["layout"] == "encoded" else VIDEO_SCHEMA


def shard_options(
    kind: str,
    max_short_side: int | None = None,
    max_fps: float | None = None,
    layout: Layout = "frames",
) -> dict:
    """The write options of a build, as the plan records them (JSON-friendly)."""
    if kind == "images":
        return {"kind": kind, "max_short_side": max_short_side}
    return {"kind": kind, "max_short_side": max_short_side, "max_fps": max_fps, "layout": layout}


def _image_sample(item: ImageItem, wkey: str, opts: dict) -> tuple[dict, dict, dict, int]:
    jpg, w, h, reenc = prepare_jpeg(Path(item.path).read_bytes(), opts["max_short_side"])
    meta = {"key": item.key, "label": item.label, "width": w, "height": h,
            "source": item.path, "dataset": item.source}  # fmt: skip
    sample = {"__key__": wkey, "jpg": jpg, "json": json.dumps(meta)}
    return sample, meta, {"jpg": [len(jpg)]}, reenc


def _video_sample(video: VideoItem, wkey: str, opts: dict) -> tuple[dict, dict, dict, int]:
    encoded = opts["layout"] == "encoded"
    vf = read_video(video, opts["max_short_side"], opts["max_fps"], as_jpeg=not encoded)
    meta = {"key": video.key, "fps": vf.fps, "n_frames": len(vf.frames), "width": vf.width,
            "height": vf.height, "source": vf.source, "dataset": video.source}  # fmt: skip
    if encoded:
        from correlearn.data import video_codec  # PyAV only for this layout

        packets = video_codec.encode_video(vf.frames, vf.fps)
        sizes = [len(p) for p in packets]
        meta.update(codec=video_codec.CODEC, gop=video_codec.GOP)
        sample = {"__key__": wkey, "json": json.dumps({**meta, "packet_sizes": sizes})}
        sample["h264"] = b"".join(packets)
        return sample, meta, {"h264": sizes}, 0
    sample = {"__key__": wkey, "json": json.dumps(meta)}
    names = [f"{t:06d}.jpg" for t in range(len(vf.frames))]
    sample.update(zip(names, vf.frames, strict=True))
    spans = {n: [len(f)] for n, f in zip(names, vf.frames, strict=True)}
    return sample, meta, spans, vf.n_reencoded


def _add_sample(tar: tarfile.TarFile, sample: dict) -> None:
    """Append a sample as ``webdataset.TarWriter(mtime=0)`` does: members sorted, fixed metadata.

    Written here rather than through webdataset, whose import pulls in torch (seconds per worker
    process); the bytes are the same, so shards written before and after are identical.
    """
    for field in sorted(k for k in sample if not k.startswith("_")):
        data = sample[field].encode() if isinstance(sample[field], str) else sample[field]
        info = tarfile.TarInfo(f"{sample['__key__']}.{field}")
        # Fixed metadata: identical inputs give identical bytes. A float mtime makes tarfile add a
        # PAX record, as webdataset's writer did; kept so that existing shards stay byte-equal.
        info.size, info.mtime, info.mode = len(data), 0.0, 0o444
        info.uname = info.gname = "bigdata"
        tar.addfile(info, io.BytesIO(data))


def _open_tar(f: BinaryIO) -> tarfile.TarFile:
    return tarfile.open(fileobj=f, mode="w|", format=tarfile.PAX_FORMAT)


def _spans(row: dict, members: dict[str, list[int]], where: dict) -> None:
    """Byte spans into the row: one per member, or one per packet of an H.264 member."""
    offsets, sizes = [], []
    for name, parts in members.items():
        at = where[f"{row['wds_key']}.{name}"][0]
        for n in parts:
            offsets.append(at)
            sizes.append(n)
            at += n
    if "jpg" in members:
        row.update(offset=offsets[0], size=sizes[0])
    else:
        row.update(frame_offsets=offsets, frame_sizes=sizes)


def write_shard(out_dir: str, j: int) -> Path:
    """Unit ``j`` of the plan in ``out_dir``: write ``shard-<j>.tar`` and its part file.

    Unusable inputs are skipped with their reason (recorded in the part, warned about at the
    merge); any other error removes the half-written shard and propagates.

    Returns:
        The part file (the unit's done marker).
    """
    plan = ShardPlan.load(out_dir)
    opts = plan.options
    make = _image_sample if opts["kind"] == "images" else _video_sample
    name, rows, skipped, n_re, members = shard_name(j), [], [], 0, {}

    def write_tar(tmp: Path) -> None:
        nonlocal n_re
        with open(tmp, "wb") as f, _open_tar(f) as tar:
            for item, wkey in plan.items(j):
                try:
                    sample, meta, spans, reenc = make(item, wkey, opts)
                except (OSError, BadInput) as exc:
                    path = item.path if opts["kind"] == "images" else video_source(item)
                    skipped.append((path, str(exc)))
                    continue
                _add_sample(tar, sample)
                rows.append({**meta, "wds_key": wkey, "shard": name})
                members[wkey] = spans
                n_re += reenc

    out = Path(out_dir)
    write_atomic(out / name, write_tar)
    if rows:
        where = scan_shard(out / name)
        for row in rows:
            _spans(row, members[row["wds_key"]], where)
    else:  # every input of this shard was unusable: no empty tar
        (out / name).unlink()
    part = {"rows": rows, "skipped": skipped, "n_reencoded": n_re}
    write_atomic(part_file(out, j), lambda tmp: tmp.write_text(json.dumps(part)))
    return part_file(out, j)


def build_shards(
    items: Sequence, out_dir: str | Path, options: dict, shard_size: int, workers: int = 1,
    progress: bool = True,
) -> ShardSummary:  # fmt: skip
    """Plan, write (resuming at the first missing shard) and merge a shard set in ``out_dir``.

    Raises:
        DataError: no item could be written.
    """
    plan = write_plan(out_dir, options["kind"], list(items), shard_size, options)
    desc = "image shards" if options["kind"] == "images" else "video shards"
    resumed = run_units(plan, write_shard, workers, desc, progress)
    return merge(plan, index_schema(options), resumed)


def write_image_shards(
    items: Sequence[ImageItem],
    out_dir: str | Path,
    max_count_per_shard: int = 1000,
    max_short_side: int | None = None,
    progress: bool = True,
    workers: int = 1,
) -> ShardSummary:
    """Write one WebDataset sample per image and ``out_dir/index.parquet``.

    Args:
        items: images to write, in the order they are stored.
        out_dir: output folder (created); shards are ``shard-000000.tar``, ...
        max_count_per_shard: source images per shard.
        max_short_side: downscale images whose short side is larger (never upscale); None keeps the
            original bytes.
        progress: show a progress bar (only on a terminal).
        workers: worker processes (the bytes written do not depend on it).

    Returns:
        The summary; index columns: key, wds_key, shard, label, width, height, source (original
        path), dataset, offset/size (byte span of the JPEG member in the shard).

    Raises:
        DataError: no item could be written.
    """
    opts = shard_options("images", max_short_side)
    return build_shards(items, out_dir, opts, max_count_per_shard, workers, progress)


def write_video_shards(
    videos: Sequence[VideoItem],
    out_dir: str | Path,
    max_count_per_shard: int = 100,
    max_short_side: int | None = None,
    progress: bool = True,
    workers: int = 1,
    max_fps: float | None = None,
    layout: Layout = "frames",
) -> ShardSummary:
    """Write one WebDataset sample per video and ``index.parquet``.

    Frame folders keep their JPEG bytes untouched unless a cap applies; video files are decoded
    with ``cv2.VideoCapture`` and every ``frame_step``-th frame is JPEG-encoded (quality 95). With
    ``layout="encoded"`` the frames are stored as one H.264 member instead. A video with any
    unreadable frame, no frame, or frames of different sizes is skipped with its reason.

    Args:
        videos: the videos, in storage order.
        out_dir: output folder (created).
        max_count_per_shard: source videos per shard.
        max_short_side: downscale frames whose short side is larger (never upscale).
        progress: show a progress bar (only on a terminal).
        workers: worker processes (the bytes written do not depend on it).
        max_fps: keep at most this frame rate (:func:`~correlearn.data.video_frames.fps_stride`).
        layout: ``"frames"`` (one JPEG member per frame) or ``"encoded"`` (one H.264 member).

    Returns:
        The summary; index columns: key, wds_key, shard, n_frames, fps, width, height, source,
        dataset, frame_offsets/frame_sizes (byte span of each frame's JPEG member, or H.264
        packet), and for ``encoded`` codec and gop.

    Raises:
        DataError: no video could be written.
    """
    opts = shard_options("videos", max_short_side, max_fps, layout)
    return build_shards(videos, out_dir, opts, max_count_per_shard, workers, progress)
