"""Write images and videos as WebDataset tar shards plus a parquet index.

Sample layout (one tar member per field, named ``<wds_key>.<field>``):

- image sample: ``<wds_key>.jpg`` (JPEG bytes) and ``<wds_key>.json``
  (``{"key", "label", "width", "height", "source", "dataset"}``).
- video sample: ``<wds_key>.000000.jpg``, ``<wds_key>.000001.jpg``, ... (one JPEG per frame, in
  temporal order) and ``<wds_key>.json`` (``{"key", "fps", "n_frames", "width", "height", "source",
  "dataset"}``). WebDataset groups these into one sample dict with keys ``"000000.jpg"``, ...; any
  tar tool can extract single frames, and a frame can be read without decoding the others.

``wds_key`` is the item key made safe for WebDataset, which splits member names at the first dot:
``/`` becomes ``__`` and anything outside ``[A-Za-z0-9_-]`` becomes ``_``. The original key stays in
the json and the index. ``index.parquet`` has one row per sample with the member byte offsets of its
JPEGs, so random access (``readers.ShardedImages``/``ShardedVideos``) never scans the tars.

Only ``out_dir`` is written; the artifact store makes it atomic.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import tarfile
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import webdataset as wds
from PIL import Image, ImageFile
from tqdm import tqdm

from correlearn.data.sources import DataError, ImageItem, VideoItem

JPEG_QUALITY = 95
INDEX_NAME = "index.parquet"


@dataclass
class ShardSummary:
    """What a shard writer produced. ``skipped`` lists ``(path, reason)`` of unusable inputs."""

    out_dir: str
    index_path: str
    shards: list[str]
    n_samples: int
    n_reencoded: int = 0
    n_bytes: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict:
        """JSON-friendly form, for stage metadata."""
        return asdict(self)


class _BadInput(Exception):
    """An input file that cannot be used; the message is the reason."""


def sanitize_keys(keys: Sequence[str]) -> list[str]:
    """Make item keys safe as WebDataset keys, disambiguating collisions with ``-<n>`` suffixes."""
    out, seen = [], set()
    for key in keys:
        base = re.sub(r"[^A-Za-z0-9_\-]", "_", key.replace("/", "__")) or "_"
        cand, n = base, 1
        while cand in seen:
            cand, n = f"{base}-{n}", n + 1
        seen.add(cand)
        out.append(cand)
    return out


def _open_checked(data: bytes) -> Image.Image:
    """Fully decode ``data`` once, so a corrupt or truncated file is caught at write time."""
    if not data:
        raise _BadInput("empty file (0 bytes)")
    # Another library may have switched on truncated-image loading globally; we must not.
    old, ImageFile.LOAD_TRUNCATED_IMAGES = ImageFile.LOAD_TRUNCATED_IMAGES, False
    try:
        with Image.open(io.BytesIO(data)) as probe:
            probe.verify()
        im = Image.open(io.BytesIO(data))
        im.load()
    except Exception as exc:  # PIL raises many types (OSError, SyntaxError, ValueError, ...)
        raise _BadInput(f"cannot decode image: {exc}") from None
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = old
    return im


def _scaled_size(w: int, h: int, max_short_side: int | None) -> tuple[int, int] | None:
    """Target size when the short side exceeds the cap (never upscales), else None."""
    if max_short_side is None or min(w, h) <= max_short_side:
        return None
    s = max_short_side / min(w, h)
    if w <= h:
        return max_short_side, max(1, round(h * s))
    return max(1, round(w * s)), max_short_side


def prepare_jpeg(data: bytes, max_short_side: int | None = None) -> tuple[bytes, int, int, bool]:
    """Validate an encoded image and return JPEG bytes for a shard.

    A JPEG within the size cap is returned untouched (pixel-exact round trip); a larger one is
    downscaled (bicubic, antialiased) and any other format is converted to RGB, both re-encoded at
    quality 95.

    Returns:
        ``(jpeg_bytes, width, height, reencoded)``.

    Raises:
        _BadInput: empty, corrupt or truncated data.
    """
    im = _open_checked(data)
    target = _scaled_size(im.width, im.height, max_short_side)
    if im.format == "JPEG" and target is None:
        return data, im.width, im.height, False
    rgb = im.convert("RGB")
    if target is not None:
        rgb = rgb.resize(target, Image.Resampling.BICUBIC)
    buf = io.BytesIO()
    rgb.save(buf, format="JPEG", quality=JPEG_QUALITY)
    return buf.getvalue(), rgb.width, rgb.height, True


class _ShardSink:
    """A ``wds.ShardWriter`` that records each sample's shard and member byte offsets."""

    def __init__(self, out_dir: str | Path, max_count: int, max_size: float):
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        pattern = str(self.out_dir).replace("%", "%%") + "/shard-%06d.tar"
        self.rows: list[dict] = []
        self._pending: list[dict] = []
        # mtime fixed so that identical inputs give byte-identical shards.
        self.writer = wds.ShardWriter(
            pattern, maxcount=max_count, maxsize=max_size, post=self._post, verbose=0, mtime=0.0
        )

    def write(self, sample: dict, row: dict, members: list[str]) -> None:
        self.writer.write(sample)
        row["shard"] = Path(self.writer.fname).name
        row["_members"] = [f"{sample['__key__']}.{m}" for m in members]
        self.rows.append(row)
        self._pending.append(row)

    def _post(self, fname: str) -> None:
        with tarfile.open(fname, "r:") as tar:
            where = {ti.name: (ti.offset_data, ti.size) for ti in tar}
        for row in self._pending:
            spans = [where[m] for m in row.pop("_members")]
            row["_offsets"] = [int(o) for o, _ in spans]
            row["_sizes"] = [int(s) for _, s in spans]
        self._pending = []

    def abort(self) -> None:
        """Close the open shard after a failure (a full disk, say) without masking that error.

        Left open, the tar stream would try to write its end blocks again at interpreter exit and
        print a second, unrelated traceback.
        """
        with contextlib.suppress(Exception):
            self.writer.close()

    def close(
        self, skipped: list, schema: pa.Schema, n_reencoded: int, spans: Callable[..., dict]
    ) -> ShardSummary:
        self.writer.close()
        for row in self.rows:
            row.update(spans(row.pop("_offsets"), row.pop("_sizes")))
        shards = sorted(p.name for p in self.out_dir.glob("shard-*.tar"))
        if not self.rows:
            for s in shards:  # ShardWriter opens its first shard eagerly
                (self.out_dir / s).unlink()
            first = "; ".join(f"{p}: {r}" for p, r in skipped[:3])
            raise DataError(f"no usable input for {self.out_dir} ({len(skipped)} skipped: {first})")
        table = pa.Table.from_pylist(self.rows, schema=schema)
        index_path = self.out_dir / INDEX_NAME
        pq.write_table(table, index_path)
        n_bytes = sum((self.out_dir / s).stat().st_size for s in shards)
        n = len(self.rows)
        return ShardSummary(
            str(self.out_dir), str(index_path), shards, n, n_reencoded, n_bytes, skipped
        )


def _skip(skipped: list, path: str, reason: str) -> None:
    skipped.append((path, reason))
    warnings.warn(f"skipping {path}: {reason}", stacklevel=3)


IMAGE_SCHEMA = pa.schema(
    [("key", pa.string()), ("wds_key", pa.string()), ("shard", pa.string()),
     ("label", pa.int64()), ("width", pa.int32()), ("height", pa.int32()),
     ("source", pa.string()), ("dataset", pa.string()),
     ("offset", pa.int64()), ("size", pa.int64())]
)  # fmt: skip


def write_image_shards(
    items: Sequence[ImageItem],
    out_dir: str | Path,
    max_count_per_shard: int = 1000,
    max_size_per_shard: float = 1e9,
    max_short_side: int | None = None,
    progress: bool = True,
) -> ShardSummary:
    """Write one WebDataset sample per image and ``out_dir/index.parquet``.

    Args:
        items: images to write, in the order they are stored.
        out_dir: output folder (created); shards are ``shard-000000.tar``, ...
        max_count_per_shard: samples per shard at most.
        max_size_per_shard: bytes per shard (approximately) at most.
        max_short_side: downscale images whose short side is larger (never upscale); None keeps the
            original bytes.
        progress: show a progress bar (only on a terminal).

    Returns:
        The summary; index columns: key, wds_key, shard, label, width, height, source (original
        path), dataset, offset/size (byte span of the JPEG member in the shard).

    Raises:
        DataError: no item could be written.
    """
    items = list(items)
    sink = _ShardSink(out_dir, max_count_per_shard, max_size_per_shard)
    skipped: list[tuple[str, str]] = []
    n_reencoded = 0
    wds_keys = sanitize_keys([it.key for it in items])
    bar = tqdm(items, "image shards", disable=None if progress else True)
    try:
        for item, wkey in zip(bar, wds_keys, strict=True):
            try:
                data = Path(item.path).read_bytes()
                jpg, w, h, reenc = prepare_jpeg(data, max_short_side)
            except (OSError, _BadInput) as exc:
                _skip(skipped, item.path, str(exc))
                continue
            n_reencoded += reenc
            meta = {"key": item.key, "label": item.label, "width": w, "height": h,
                    "source": item.path, "dataset": item.source}  # fmt: skip
            sink.write({"__key__": wkey, "jpg": jpg, "json": json.dumps(meta)}, meta, ["jpg"])
            meta["wds_key"] = wkey
    except BaseException:
        sink.abort()
        raise
    return sink.close(skipped, IMAGE_SCHEMA, n_reencoded, _image_spans)


def _image_spans(offsets: list[int], sizes: list[int]) -> dict:
    return {"offset": offsets[0], "size": sizes[0]}


VIDEO_SCHEMA = pa.schema(
    [("key", pa.string()), ("wds_key", pa.string()), ("shard", pa.string()),
     ("n_frames", pa.int64()), ("fps", pa.float64()), ("width", pa.int32()),
     ("height", pa.int32()), ("source", pa.string()), ("dataset", pa.string()),
     ("frame_offsets", pa.list_(pa.int64())), ("frame_sizes", pa.list_(pa.int64()))]
)  # fmt: skip


def _frames_from_folder(video: VideoItem, max_short_side: int | None) -> tuple[list[bytes], int]:
    frames, n_re = [], 0
    for path in video.frames or []:
        try:
            jpg, *_, reenc = prepare_jpeg(Path(path).read_bytes(), max_short_side)
        except (OSError, _BadInput) as exc:
            # A hole would silently change every frame gap after it: drop the whole video.
            raise _BadInput(f"frame {path}: {exc}") from None
        frames.append(jpg)
        n_re += reenc
    return frames, n_re


def _frames_from_file(video: VideoItem, max_short_side: int | None) -> tuple[list[bytes], float]:
    cap = cv2.VideoCapture(str(video.video_path))
    try:
        if not cap.isOpened():
            raise _BadInput("cv2.VideoCapture cannot open the file")
        fps = cap.get(cv2.CAP_PROP_FPS)
        fps = float(fps) if np.isfinite(fps) and fps > 0 else video.fps
        frames, t = [], 0
        while True:
            ok, bgr = cap.read()
            if not ok:
                break
            if t % video.frame_step == 0:
                h, w = bgr.shape[:2]
                target = _scaled_size(w, h, max_short_side)
                if target is not None:
                    bgr = cv2.resize(bgr, target, interpolation=cv2.INTER_AREA)
                ok, enc = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
                if not ok:
                    raise _BadInput(f"cannot JPEG-encode frame {t}")
                frames.append(enc.tobytes())
            t += 1
    finally:
        cap.release()
    if not frames:
        raise _BadInput("no decodable frame")
    return frames, fps / video.frame_step


def write_video_shards(
    videos: Iterable[VideoItem] | Sequence[VideoItem],
    out_dir: str | Path,
    max_count_per_shard: int = 100,
    max_size_per_shard: float = 1e9,
    max_short_side: int | None = None,
    progress: bool = True,
) -> ShardSummary:
    """Write one WebDataset sample per video (all its frames as JPEGs) and ``index.parquet``.

    Frame folders keep their JPEG bytes untouched unless ``max_short_side`` caps them; video files
    are decoded with ``cv2.VideoCapture`` and every ``frame_step``-th frame is JPEG-encoded
    (quality 95). A video with any unreadable frame, no frame, or frames of different sizes is
    skipped with its reason.

    Args:
        videos: the videos, in storage order.
        out_dir: output folder (created).
        max_count_per_shard: videos per shard at most.
        max_size_per_shard: bytes per shard (approximately) at most.
        max_short_side: downscale frames whose short side is larger (never upscale).
        progress: show a progress bar (only on a terminal).

    Returns:
        The summary; index columns: key, wds_key, shard, n_frames, fps, width, height, source,
        dataset, frame_offsets/frame_sizes (byte span of each frame's JPEG member).

    Raises:
        DataError: no video could be written.
    """
    videos = list(videos)
    sink = _ShardSink(out_dir, max_count_per_shard, max_size_per_shard)
    skipped: list[tuple[str, str]] = []
    n_reencoded = 0
    wds_keys = sanitize_keys([v.key for v in videos])
    bar = tqdm(videos, "video shards", disable=None if progress else True)
    for video, wkey in zip(bar, wds_keys, strict=True):
        source = video.video_path or (os.path.dirname(video.frames[0]) if video.frames else "")
        try:
            if video.video_path is not None:
                frames, fps = _frames_from_file(video, max_short_side)
                n_re = len(frames)
            else:
                (frames, n_re), fps = _frames_from_folder(video, max_short_side), video.fps
                if not frames:
                    raise _BadInput("no frame")
            sizes = {_jpeg_size(f) for f in frames}
            if len(sizes) != 1:
                raise _BadInput(f"frame sizes differ: {sorted(sizes)[:4]}")
        except _BadInput as exc:
            _skip(skipped, source, str(exc))
            continue
        n_reencoded += n_re
        (w, h) = sizes.pop()
        meta = {"key": video.key, "fps": fps, "n_frames": len(frames), "width": w, "height": h,
                "source": source, "dataset": video.source}  # fmt: skip
        names = [f"{t:06d}.jpg" for t in range(len(frames))]
        sample = {"__key__": wkey, "json": json.dumps(meta)}
        sample.update(zip(names, frames, strict=True))
        sink.write(sample, meta, names)
        meta["wds_key"] = wkey
    return sink.close(skipped, VIDEO_SCHEMA, n_reencoded, _video_spans)


def _video_spans(offsets: list[int], sizes: list[int]) -> dict:
    return {"frame_offsets": offsets, "frame_sizes": sizes}


def _jpeg_size(data: bytes) -> tuple[int, int]:
    # Reads only the header: frames were already fully decoded once when validated/encoded.
    with Image.open(io.BytesIO(data)) as im:
        return im.size
