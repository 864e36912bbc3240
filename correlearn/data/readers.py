"""Map-style random access to the shards written by :mod:`correlearn.data.shards`.

:class:`ShardedImages` / :class:`ShardedVideos` read samples by position or key at the byte spans
stored in ``index.parquet`` (``os.pread``, no tar scan). Training stages use these for batches that
are a pure function of (seed, step); the streaming path is :mod:`correlearn.data.wds_pipeline`.

Images decode to uint8 RGB arrays ``(H, W, 3)`` or, with ``decode="torch"``, uint8 tensors
``(3, H, W)``; ``decode="lazy"`` gives an :class:`~correlearn.data.decode.EncodedImage` that
decodes only as much as a random-resized crop needs. Videos of either layout (a JPEG per frame, or
one H.264 member decoded on the fly) read through the same interface.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import torch

from correlearn.data.decode import Decode, EncodedImage, as_output, decode_image
from correlearn.data.shard_build import scan_shard
from correlearn.data.sources import DataError


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
        decode: ``"numpy"`` (``(H, W, 3)`` uint8), ``"torch"`` (``(3, H, W)`` uint8), ``"bytes"``,
            or ``"lazy"`` (an :class:`~correlearn.data.decode.EncodedImage`: reduced-size decode
            where a random-resized crop is smaller than the image).
        max_scale: the largest DCT scale of ``"lazy"`` images (1: always full size).
    """

    def __init__(self, root: str | Path, decode: Decode = "numpy", max_scale: int = 8):
        super().__init__(root)
        self.decode, self.max_scale = decode, max_scale
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
        if self.decode == "bytes":
            image: Any = data
        elif self.decode == "lazy":
            try:
                image = EncodedImage(data, self.max_scale)
            except OSError as exc:  # PIL cannot read the header
                raise DataError(f"{self.dir / self.shards[i]}: image of sample "
                                f"{self.keys[i]!r}: {exc}") from None  # fmt: skip
        else:
            image = as_output(self._decode(data, i, "image"), self.decode)
        return {"image": image, "label": int(self.labels[i]), "key": self.keys[i], "index": i}


class ShardedVideos(_ShardFiles):
    """Random access to a video shard set; frames are read without decoding the whole video.

    In the ``frames`` layout a frame is one JPEG member; in the ``encoded`` layout (index columns
    ``codec`` and ``gop``) frame ``t`` is decoded from its keyframe's packets on (at most ``gop``
    frames), and :meth:`frames` decodes each group of pictures it needs once.

    Args:
        root: the shard folder or its ``index.parquet``.
        decode: ``"numpy"`` (frames ``(H, W, 3)`` uint8) or ``"torch"`` (``(3, H, W)`` uint8);
            ``"bytes"`` (JPEG bytes) for the frames layout only.
    """

    def __init__(self, root: str | Path, decode: Decode = "numpy"):
        super().__init__(root)
        self.decode = decode
        self.n_frames = self.table.column("n_frames").to_numpy()
        self.fps = self.table.column("fps").to_numpy()
        self.encoded = "codec" in self.table.column_names
        if self.encoded:
            self.gop = self.table.column("gop").to_numpy()
            self.hw = np.stack([self.table.column(c).to_numpy() for c in ("height", "width")], 1)
        if decode not in ("numpy", "torch") and (self.encoded or decode != "bytes"):
            raise DataError(f"{self.index_path}: decode={decode!r} is not available for videos "
                            "of this layout")  # fmt: skip
        offs = self.table.column("frame_offsets").combine_chunks()
        sizes = self.table.column("frame_sizes").combine_chunks()
        # Flat arrays + row starts: compact for millions of frames, cheap to pickle to workers.
        self._starts = offs.offsets.to_numpy()
        self._offsets = offs.values.to_numpy()
        self._sizes = sizes.values.to_numpy()

    def _check(self, i: int, t: int) -> int:
        if not 0 <= t < self.n_frames[i]:
            raise IndexError(f"frame {t} of {self.keys[i]!r} ({self.n_frames[i]} frames)")
        return int(self._starts[i] + t)

    def frame_bytes(self, i: int, t: int) -> bytes:
        """JPEG bytes of frame ``t`` of video ``i`` (frames layout)."""
        if self.encoded:
            raise DataError(f"{self.index_path}: an encoded video has no per-frame JPEG bytes")
        j = self._check(i, t)
        return self._read(self.shards[i], int(self._offsets[j]), int(self._sizes[j]))

    def _packets(self, i: int, k: int, t: int) -> list[memoryview]:
        """H.264 packets ``k .. t`` of video ``i``: one read, they are contiguous."""
        a, b = self._check(i, k), self._check(i, t)
        start = int(self._offsets[a])
        data = memoryview(
            self._read(self.shards[i], start, int(self._offsets[b] + self._sizes[b]) - start)
        )
        return [data[int(o) - start : int(o + n) - start]
                for o, n in zip(self._offsets[a : b + 1], self._sizes[a : b + 1], strict=True)]  # fmt: skip

    def frame(self, i: int, t: int) -> Any:
        """Frame ``t`` of video ``i``: ``(H, W, 3)`` array or ``(3, H, W)`` tensor, uint8."""
        if self.encoded:
            return self.frames(i, [t])[0]
        data = self.frame_bytes(i, t)
        if self.decode == "bytes":
            return data
        return as_output(self._decode(data, i, f"frame {t}"), self.decode)

    def frames(self, i: int, ts: Sequence[int]) -> Any:
        """Frames ``ts`` of video ``i``, stacked: ``(T, H, W, 3)`` array or ``(T, 3, H, W)``."""
        if self.encoded:
            out = [as_output(f, self.decode) for f in self._decode_encoded(i, ts)]
        else:
            out = [self.frame(i, int(t)) for t in ts]
        return torch.stack(out) if self.decode == "torch" else np.stack(out)

    def _decode_encoded(self, i: int, ts: Sequence[int]) -> list[np.ndarray]:
        from correlearn.data.video_codec import decode_frames  # PyAV only for this layout

        for t in ts:
            self._check(i, int(t))
        size = (int(self.hw[i, 0]), int(self.hw[i, 1]))
        try:
            return decode_frames(lambda k, t: self._packets(i, k, t), ts, size, int(self.gop[i]))
        except ValueError as exc:
            raise DataError(f"{self.dir / self.shards[i]}: video {self.keys[i]!r}: {exc}") from None

    def __getitem__(self, i: int) -> dict[str, Any]:
        frames = self.frames(i, range(int(self.n_frames[i])))
        return {"frames": frames, "fps": float(self.fps[i]), "key": self.keys[i], "index": i}
