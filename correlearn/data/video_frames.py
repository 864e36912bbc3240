"""A source video's frames for a shard, from a frame folder or a video file, under the two caps.

- ``max_fps``: temporal subsampling to at most that rate. The stride is the integer
  ``k = ceil(fps / max_fps)`` and the stored rate ``fps / k``, so frames stay evenly spaced and the
  stored fps stays exact (the frame index converts frame gaps with it). The source rate of a video
  file is the container's (else the dataset's ``fps``); frame folders carry none, so it is the
  dataset spec's ``fps`` (None: 24 for DAVIS, which was shot at 24 fps, 30 otherwise), divided by
  ``frame_step``.
- ``max_short_side``: frames whose short side is larger are downscaled (never upscaled).

Frames come back either as the JPEG bytes a shard stores (``frames`` layout: folder frames within
the caps keep their bytes, pixel-exact) or as RGB arrays for the video encoder (``encoded``).
A video with any unreadable frame, no frame, or frames of different sizes is refused
(:class:`~correlearn.data.prepare.BadInput`): a hole would silently change every frame gap after it.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from correlearn.data.prepare import (
    JPEG_QUALITY,
    BadInput,
    prepare_jpeg,
    prepare_rgb,
    scaled_size,
)
from correlearn.data.sources import VideoItem


@dataclass
class VideoFrames:
    """Frames of one video, in temporal order, and what describes them in the index.

    Attributes:
        frames: JPEG bytes (``as_jpeg``) or uint8 RGB arrays ``(H, W, 3)``.
        fps: the stored frame rate (after ``frame_step`` and the ``max_fps`` stride).
        width: frame width.
        height: frame height.
        n_reencoded: frames whose JPEG bytes were re-encoded (0 for arrays).
        source: the video file or the frame folder.
    """

    frames: list
    fps: float
    width: int
    height: int
    n_reencoded: int
    source: str


def fps_stride(fps: float, max_fps: float | None) -> int:
    """Keep every k-th frame so that ``fps / k <= max_fps``: ``k = ceil(fps / max_fps)``, >= 1."""
    if max_fps is None or fps <= max_fps:
        return 1
    return max(1, math.ceil(fps / max_fps - 1e-9))


def video_source(video: VideoItem) -> str:
    """The path that names a video in skip reasons and the index: its file or its frame folder."""
    return video.video_path or (os.path.dirname(video.frames[0]) if video.frames else "")


def _from_folder(video: VideoItem, max_side: int | None, max_fps: float | None, as_jpeg: bool):
    k = fps_stride(video.fps, max_fps)
    frames, n_re, sizes = [], 0, set()
    for path in (video.frames or [])[::k]:
        try:
            data = Path(path).read_bytes()
            if as_jpeg:
                jpg, w, h, reenc = prepare_jpeg(data, max_side)
                frames.append(jpg)
                n_re += reenc
            else:
                frames.append(prepare_rgb(data, max_side))
                h, w = frames[-1].shape[:2]
        except (OSError, BadInput) as exc:
            raise BadInput(f"frame {path}: {exc}") from None
        sizes.add((w, h))
    return frames, video.fps / k, n_re, sizes


def _from_file(video: VideoItem, max_side: int | None, max_fps: float | None, as_jpeg: bool):
    cap = cv2.VideoCapture(str(video.video_path))
    try:
        if not cap.isOpened():
            raise BadInput("cv2.VideoCapture cannot open the file")
        fps = cap.get(cv2.CAP_PROP_FPS)
        fps = float(fps) if np.isfinite(fps) and fps > 0 else video.fps
        step = video.frame_step * fps_stride(fps / video.frame_step, max_fps)
        frames, sizes, t = [], set(), 0
        while True:
            ok, bgr = cap.read()
            if not ok:
                break
            if t % step == 0:
                target = scaled_size(bgr.shape[1], bgr.shape[0], max_side)
                if target is not None:
                    bgr = cv2.resize(bgr, target, interpolation=cv2.INTER_AREA)
                sizes.add((bgr.shape[1], bgr.shape[0]))
                if as_jpeg:
                    ok, enc = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
                    if not ok:
                        raise BadInput(f"cannot JPEG-encode frame {t}")
                    frames.append(enc.tobytes())
                else:
                    frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
            t += 1
    finally:
        cap.release()
    return frames, fps / step, len(frames) if as_jpeg else 0, sizes


def read_video(
    video: VideoItem,
    max_short_side: int | None = None,
    max_fps: float | None = None,
    as_jpeg: bool = True,
) -> VideoFrames:
    """Read, validate and cap one video's frames.

    Args:
        video: the video (frame folder or file).
        max_short_side: downscale frames whose short side is larger (never upscale).
        max_fps: keep at most this frame rate (see the module docstring).
        as_jpeg: JPEG bytes (frames layout) or RGB arrays (encoded layout).

    Returns:
        The frames and their description.

    Raises:
        BadInput: an unreadable frame, no frame, or frames of different sizes.
    """
    read = _from_file if video.video_path is not None else _from_folder
    frames, fps, n_re, sizes = read(video, max_short_side, max_fps, as_jpeg)
    if not frames:
        raise BadInput("no decodable frame" if video.video_path else "no frame")
    if len(sizes) != 1:
        raise BadInput(f"frame sizes differ: {sorted(sizes)[:4]}")
    (w, h) = sizes.pop()
    return VideoFrames(frames, fps, w, h, n_re, video_source(video))
