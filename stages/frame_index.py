"""Stage ``frame_index``: per video its frames and fps, and valid pairs per gap range (parquet)."""

from __future__ import annotations

from pydantic import Field

from correlearn.config import StrictModel
from correlearn.data.frame_index import build_frame_index, write_frame_index
from correlearn.stage import StageContext, StageSpec


class FrameIndexConfig(StrictModel):
    """Config of ``frame_index``.

    Attributes:
        gap_ranges: gap ranges, in frames at ``ref_fps``, to count valid pairs for (SiamMAE
            Table 3b samples gaps in [4, 48] at 30 fps).
        ref_fps: the frame rate the gap ranges refer to.
    """

    gap_ranges: list[tuple[int, int]] = [(4, 48)]
    ref_fps: float = Field(30.0, gt=0)


def run(ctx: StageContext) -> dict:
    """Read the video shard index and write ``frame_index.parquet``."""
    table = build_frame_index(
        ctx.input_path("videos") / "index.parquet", ctx.config.gap_ranges, ctx.config.ref_fps
    )
    write_frame_index(table, ctx.out_dir / "frame_index.parquet")
    ctx.count("videos", table.num_rows)
    ctx.count("frames", int(sum(table.column("n_frames").to_pylist())))
    for col in table.column_names:
        if col.startswith("pairs_gap_"):
            ctx.count(col, int(sum(table.column(col).to_pylist())))
    return {}


STAGE = StageSpec(
    name="frame_index",
    version=1,
    config_model=FrameIndexConfig,
    run=run,
    inputs={"videos": "video_shards"},
    description="video shards -> frame-gap index (parquet)",
)
