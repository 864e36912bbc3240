"""The stage registry: one small module per stage; no algorithm lives here."""

from correlearn.stage import StageSpec
from stages import frame_index, image_shards, pretrain_image, video_shards

STAGES: dict[str, StageSpec] = {
    m.STAGE.name: m.STAGE
    for m in (
        image_shards,
        video_shards,
        frame_index,
        pretrain_image,
    )
}
