"""A video's frames as one H.264 member (through PyAV) and frame-exact decoding of any frame.

The ``encoded`` layout of video shards stores each video as one raw H.264 (Annex B) member
instead of one JPEG per frame. The encoding is fixed so that any frame decodes exactly and cheaply,
without a container to probe:

- one packet per frame, in display order (no B-frames), frame ``t`` = packet ``t``; the shard index
  keeps every packet's byte span, so frame ``t`` needs one read of packets ``k .. t``;
- a keyframe every :data:`GOP` frames and none elsewhere (scene-cut detection off), with the
  sequence headers repeated at each, so packets ``k = GOP * (t // GOP) .. t`` decode on their own;
- one encoder thread, so the bytes do not depend on the machine or the worker count;
- the frame padded to even sides by repeating its last row/column (4:2:0 chroma needs even sides);
  the decoder crops back to the stored ``(height, width)``.

PyAV is imported lazily: without it only this layout is unavailable.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from fractions import Fraction

import numpy as np

from correlearn.data.sources import DataError

CODEC = "h264"
# bench/shard_build.py on DAVIS 480p: GOP 8 reads a random frame in ~6 decoded-frame times (GOP 16:
# ~10) for ~15 % more bytes; CRF 23 is x264's default, 2.5-3x fewer bytes than JPEG q95 frames on
# DAVIS (more on smoother content) at a mean absolute error of ~4 grey levels.
GOP = 8
CRF = 23
PRESET = "veryfast"  # ~4x the encode speed of "medium"; encoding dominates the shard build


def _av():
    try:
        import av
    except ImportError:
        raise DataError(
            "layout 'encoded' needs PyAV, which is not installed (pip install av); "
            "use layout 'frames'"
        ) from None
    return av


def encode_video(frames: Sequence[np.ndarray], fps: float) -> list[bytes]:
    """Encode RGB frames as H.264 packets (see the module docstring for the fixed settings).

    Args:
        frames: T uint8 RGB arrays ``(H, W, 3)``, all of one size.
        fps: the frame rate (recorded in the stream's timing only).

    Returns:
        T packets; their concatenation is a raw H.264 stream any player reads.
    """
    av = _av()
    h, w = frames[0].shape[:2]
    rate = Fraction(fps).limit_denominator(1001)
    cc = av.CodecContext.create("libx264", "w")
    cc.width, cc.height, cc.pix_fmt = w + w % 2, h + h % 2, "yuv420p"
    cc.time_base, cc.framerate, cc.thread_count = 1 / rate, rate, 1
    cc.options = {"crf": str(CRF), "preset": PRESET, "g": str(GOP), "keyint_min": str(GOP),
                  "sc_threshold": "0", "bf": "0", "x264-params": "repeat-headers=1"}  # fmt: skip
    packets: list[bytes] = []
    for t, rgb in enumerate(frames):
        if w % 2 or h % 2:
            rgb = np.pad(rgb, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        frame.pts = t
        packets += [bytes(p) for p in cc.encode(frame)]
    packets += [bytes(p) for p in cc.encode(None)]
    if len(packets) != len(frames):
        raise ValueError(f"encoder gave {len(packets)} packets for {len(frames)} frames")
    return packets


def decode_run(packets: Sequence[bytes | memoryview], size: tuple[int, int]) -> list[np.ndarray]:
    """Decode consecutive packets that start at a keyframe: one RGB frame per packet.

    Args:
        packets: packets ``k .. t`` of one video, ``k`` a keyframe.
        size: ``(height, width)`` of the stored frames.

    Returns:
        ``t - k + 1`` uint8 arrays ``(height, width, 3)``.

    Raises:
        ValueError: the packets do not decode to one frame each.
    """
    av = _av()
    dec = av.CodecContext.create(CODEC, "r")
    dec.thread_count = 1  # parallelism comes from DataLoader workers; threads add latency
    out = []
    try:
        for data in [*packets, None]:
            for frame in dec.decode(None if data is None else av.Packet(data)):
                out.append(frame.to_ndarray(format="rgb24")[: size[0], : size[1]])
    except av.error.FFmpegError as exc:
        raise ValueError(f"cannot decode H.264 packets: {exc}") from None
    if len(out) != len(packets):
        raise ValueError(f"{len(packets)} H.264 packets decoded to {len(out)} frames")
    return out


def decode_frames(
    read: Callable[[int, int], Sequence[bytes | memoryview]],
    ts: Sequence[int],
    size: tuple[int, int],
    gop: int,
) -> list[np.ndarray]:
    """Frames ``ts`` of one video, each needed group of pictures decoded once, up to its last use.

    Args:
        read: ``read(k, t) -> [packet k, ..., packet t]`` of the video.
        ts: frame numbers (any order, repeats allowed).
        size: ``(height, width)`` of the stored frames.
        gop: the keyframe interval the video was encoded with (stored in the shard index).

    Returns:
        One uint8 RGB array ``(height, width, 3)`` per entry of ``ts``.
    """
    got: dict[int, np.ndarray] = {}
    by_gop: dict[int, int] = {}
    for t in ts:
        k = gop * (int(t) // gop)
        by_gop[k] = max(by_gop.get(k, k), int(t))
    for k, last in sorted(by_gop.items()):
        for j, frame in enumerate(decode_run(read(k, last), size)):
            got[k + j] = frame
    return [got[int(t)] for t in ts]
