"""Frame-gap index and the temporal samplers of VFS and SiamMAE.

The samplers are pure functions of their arguments and an explicit ``numpy.random.Generator``; frame
indices are 0-based. A video too short for a sampler raises :class:`TooShortError`;
:func:`valid_videos` finds those up front so that training skips them with a reason.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import Field

from correlearn.config import StrictModel
from correlearn.data.sources import DataError


class TooShortError(DataError):
    """A video has fewer frames than a sampler needs."""


def distant_sample(n_frames: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """VFS distant sampling (paper Sec. 3.2 "Temporal Sampling", Table 1, Fig. 3).

    The video is split into ``n`` disjoint segments and one frame is drawn uniformly from each:
    I_i = L/n (i-1) + unif(0, L/n). Integer segment bounds ``floor(k L / n)`` make the segments
    disjoint and non-empty for L >= n, so no frame is drawn twice (flooring the paper's real-valued
    formula can draw a boundary frame for two segments).

    Args:
        n_frames: L, frames in the video.
        n: frames to draw (segments); VFS's best is 8 (Table 4).
        rng: the random generator.

    Returns:
        ``(n,)`` int64 frame indices, strictly increasing.

    Raises:
        TooShortError: ``n_frames < n``.
    """
    if n_frames < n:
        raise TooShortError(
            f"distant sampling of {n} frames needs {n} frames, video has {n_frames}"
        )
    bounds = (np.arange(n + 1, dtype=np.int64) * n_frames) // n
    return rng.integers(bounds[:-1], bounds[1:])


def continuous_sample(n_frames: int, n: int, delta: int, rng: np.random.Generator) -> np.ndarray:
    """VFS continuous sampling (paper Sec. 3.2, Table 1): I_i = I_1 + (i-1) delta.

    The start I_1 is uniform over the positions where all ``n`` frames fit. ``delta = 0`` draws one
    frame ``n`` times (the "0" row of VFS Table 3).

    Args:
        n_frames: frames in the video.
        n: frames to draw.
        delta: frame interval.
        rng: the random generator.

    Returns:
        ``(n,)`` int64 frame indices.

    Raises:
        TooShortError: ``n_frames < (n - 1) * delta + 1``.
    """
    span = (n - 1) * delta
    if n_frames < span + 1:
        raise TooShortError(f"{n} frames at interval {delta} need {span + 1}, video has {n_frames}")
    start = rng.integers(0, n_frames - span)
    return start + np.arange(n, dtype=np.int64) * delta


def _scale(gap30: np.ndarray, fps: float, ref_fps: float) -> np.ndarray:
    # Round half up (not to even), and never below 1 frame: the two frames must differ.
    return np.maximum(1, np.floor(gap30 * (fps / ref_fps) + 0.5)).astype(np.int64)


def scaled_gaps(
    fps: float, gap_range: tuple[int, int] = (4, 48), ref_fps: float = 30.0
) -> np.ndarray:
    """Distinct frame gaps at ``fps`` for a gap range given in frames at ``ref_fps`` (sorted)."""
    lo, hi = gap_range
    return np.unique(_scale(np.arange(lo, hi + 1), fps, ref_fps))


def gap_pair(
    n_frames: int,
    fps: float,
    gap_range: tuple[int, int] = (4, 48),
    ref_fps: float = 30.0,
    *,
    rng: np.random.Generator,
) -> tuple[int, int]:
    """SiamMAE frame pair (paper Sec. 3 "Patchify", Sec. 4.1 "Pre-training", Table 3b).

    The gap is drawn uniformly from ``gap_range`` frames at 30 fps ([4, 48] by default), scaled by
    ``fps / ref_fps`` and rounded (at least 1), so it spans the same time at any frame rate. Gaps
    longer than the video are excluded before drawing (rather than clipped, which would pile their
    probability on the longest gap). The first frame is uniform over the positions where the pair
    fits; f1 precedes f2 in time.

    Args:
        n_frames: frames in the video.
        fps: frame rate of the stored frames.
        gap_range: inclusive gap range in frames at ``ref_fps``.
        ref_fps: frame rate at which ``gap_range`` is defined (Kinetics, 30).
        rng: the random generator.

    Returns:
        ``(i, j)`` with ``j - i`` the drawn gap.

    Raises:
        TooShortError: ``n_frames`` < smallest scaled gap + 1.
    """
    lo, hi = gap_range
    g30 = np.arange(lo, hi + 1)
    gaps = _scale(g30, fps, ref_fps)
    ok = gaps <= n_frames - 1
    if not ok.any():
        raise TooShortError(
            f"gap range {gap_range} at {ref_fps:g} fps is >= {gaps.min()} frames at {fps:g} fps; "
            f"video has {n_frames} frames"
        )
    gap = int(rng.choice(gaps[ok]))
    i = int(rng.integers(0, n_frames - gap))
    return i, i + gap


def count_gap_pairs(
    n_frames: int, fps: float, gap_range: tuple[int, int] = (4, 48), ref_fps: float = 30.0
) -> int:
    """Number of ordered pairs (i, j), i < j, whose gap j - i is a scaled gap of ``gap_range``."""
    gaps = scaled_gaps(fps, gap_range, ref_fps)
    gaps = gaps[gaps <= n_frames - 1]
    return int((n_frames - gaps).sum())


class FrameSampler(StrictModel):
    """Which temporal sampler a video method uses, with its paper defaults.

    Attributes:
        kind: ``distant`` (VFS default, Table 3), ``continuous`` (VFS ablation) or ``gap_pair``
            (SiamMAE).
        n: frames per video for VFS samplers (VFS Table 4: 8 frames, 4 pairs).
        delta: interval of continuous sampling (VFS Table 3).
        gap_range: SiamMAE gap range in frames at ``ref_fps`` (Table 3b: [4, 48]).
        ref_fps: the frame rate ``gap_range`` refers to (SiamMAE Sec. 4.1: 30 fps).
    """

    kind: Literal["distant", "continuous", "gap_pair"] = "distant"
    n: int = Field(8, ge=1)
    delta: int = Field(8, ge=0)
    gap_range: tuple[int, int] = (4, 48)
    ref_fps: float = Field(30.0, gt=0)

    def min_frames(self, fps: float) -> int:
        """Fewest frames a video at ``fps`` needs for this sampler."""
        if self.kind == "distant":
            return self.n
        if self.kind == "continuous":
            return (self.n - 1) * self.delta + 1
        return int(scaled_gaps(fps, self.gap_range, self.ref_fps).min()) + 1

    def sample(self, n_frames: int, fps: float, rng: np.random.Generator) -> np.ndarray:
        """Frame indices: ``(n,)`` for VFS samplers, ``(2,)`` for ``gap_pair``."""
        if self.kind == "distant":
            return distant_sample(n_frames, self.n, rng)
        if self.kind == "continuous":
            return continuous_sample(n_frames, self.n, self.delta, rng)
        return np.array(gap_pair(n_frames, fps, self.gap_range, self.ref_fps, rng=rng))


def _rows(index: pa.Table | Sequence[Mapping] | str | Path) -> list[dict]:
    if isinstance(index, str | Path):
        index = pq.read_table(index)
    if isinstance(index, pa.Table):
        # Only the scalar columns: a video index also holds per-frame offset lists.
        wanted = [c for c in ("key", "n_frames", "fps", "shard") if c in index.column_names]
        return index.select(wanted).to_pylist()
    return [dict(r) for r in index]


def valid_videos(
    index: pa.Table | Sequence[Mapping] | str | Path, sampler: FrameSampler
) -> tuple[list[int], list[tuple[str, str]]]:
    """Split index rows into those the sampler can use and those it cannot.

    Args:
        index: a video or frame index (rows with ``key``, ``n_frames``, ``fps``), or its path.
        sampler: the sampler that will draw frames.

    Returns:
        ``(ok, skipped)``: row positions usable by the sampler, and ``(key, reason)`` of the others.
    """
    ok, skipped = [], []
    for pos, row in enumerate(_rows(index)):
        need = sampler.min_frames(float(row["fps"]))
        if row["n_frames"] >= need:
            ok.append(pos)
        else:
            skipped.append(
                (row["key"], f"{row['n_frames']} frames < {need} needed by {sampler.kind} "
                 f"sampling at {row['fps']:g} fps")
            )  # fmt: skip
    return ok, skipped


def gap_column(gap_range: tuple[int, int]) -> str:
    """Index column name of a gap range's pair count, e.g. ``pairs_gap_4_48``."""
    return f"pairs_gap_{gap_range[0]}_{gap_range[1]}"


def build_frame_index(
    video_index: pa.Table | Sequence[Mapping] | str | Path,
    gap_ranges: Sequence[tuple[int, int]] = ((4, 48),),
    ref_fps: float = 30.0,
) -> pa.Table:
    """Per-video frame-gap index from a video shard index.

    Args:
        video_index: the ``index.parquet`` of video shards (or its rows, or its path).
        gap_ranges: gap ranges in frames at ``ref_fps`` to count valid pairs for.
        ref_fps: frame rate the gap ranges refer to.

    Returns:
        Columns ``position`` (row in the video index), key, n_frames, fps, duration_s, shard, and
        one ``pairs_gap_<lo>_<hi>`` count per gap range (0 = too short for that range).
    """
    rows = _rows(video_index)
    if not rows:
        raise DataError("build_frame_index: the video index is empty")
    cols: dict[str, list] = {"position": list(range(len(rows)))}
    for name in ("key", "n_frames", "fps", "shard"):
        cols[name] = [r[name] for r in rows]
    cols["duration_s"] = [r["n_frames"] / r["fps"] if r["fps"] else math.nan for r in rows]
    for gr in gap_ranges:
        cols[gap_column(tuple(gr))] = [
            count_gap_pairs(r["n_frames"], r["fps"], tuple(gr), ref_fps) for r in rows
        ]
    return pa.table(cols)


def write_frame_index(table: pa.Table, path: str | Path) -> Path:
    """Write the frame index as parquet; returns the path."""
    path = Path(path)
    pq.write_table(table, path)
    return path
