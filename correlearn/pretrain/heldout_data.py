"""In-memory readers of a held-out set, with the interface of the shard readers.

The method batch builders read ``images[i]["image"]`` (:class:`~correlearn.data.readers.ShardedImages`)
and ``videos.n_frames``, ``videos.fps``, ``videos.frames(i, ts)``
(:class:`~correlearn.data.readers.ShardedVideos`); these give the same from decoded frames, so a
held-out batch is built by exactly the code that builds a training batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from correlearn.data.sources import VideoItem


@dataclass(frozen=True)
class MemoryImages:
    """Decoded images by position: ``images[i] -> {"key", "image": (H, W, 3) uint8}``."""

    keys: list[str]
    arrays: list[np.ndarray]

    def __len__(self) -> int:
        return len(self.keys)

    def __getitem__(self, i: int) -> dict:
        return {"key": self.keys[i], "image": self.arrays[i]}


@dataclass(frozen=True)
class MemoryVideos:
    """Decoded videos by position: ``frames(i, ts) -> (T, H, W, 3)`` uint8."""

    keys: list[str]
    clips: list[list[np.ndarray]]
    n_frames: np.ndarray
    fps: np.ndarray

    def __len__(self) -> int:
        return len(self.keys)

    def frames(self, i: int, ts: Sequence[int]) -> np.ndarray:
        """Frames ``ts`` of video ``i``, stacked."""
        return np.stack([self.clips[i][int(t)] for t in ts])


def memory_images(keys: list[str], arrays: list[np.ndarray]) -> MemoryImages:
    """Images with their keys."""
    return MemoryImages(list(keys), list(arrays))


def memory_videos(videos: list[tuple[str, list[np.ndarray], float]]) -> MemoryVideos:
    """Videos from ``(key, frames, fps)``."""
    return MemoryVideos(
        [k for k, _, _ in videos],
        [list(f) for _, f, _ in videos],
        np.array([len(f) for _, f, _ in videos], dtype=np.int64),
        np.array([fps for _, _, fps in videos], dtype=np.float64),
    )


def frame_box(item: VideoItem, t: int, size: tuple[int, int]) -> np.ndarray:
    """The (1, 4) xyxy box of frame ``t``'s annotated objects, in a frame of ``size`` (H, W).

    DAVIS masks are at the original resolution; the box is scaled to the stored frame. A frame
    without a mask, or with an empty one, gives the whole frame.
    """
    h, w = size
    path = item.masks[t] if item.masks and t < len(item.masks) else None
    if path is not None:
        mask = np.asarray(Image.open(path))
        ys, xs = np.nonzero(mask.reshape(mask.shape[0], mask.shape[1], -1).max(-1))
        if len(xs):
            sx, sy = w / mask.shape[1], h / mask.shape[0]
            box = [xs.min() * sx, ys.min() * sy, (xs.max() + 1) * sx, (ys.max() + 1) * sy]
            return np.array([box], dtype=np.float64)
    return np.array([[0.0, 0.0, w, h]], dtype=np.float64)
