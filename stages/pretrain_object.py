"""Stage ``pretrain_object``: ORL stage 3, object-level BYOL on mined RoI pairs (ORL Sec. 3.1).

Inputs: the image shards, the filtered RoIs (intra-RoI candidates, the reference JSON's ``bbox``)
and the stored RoI pairs. No stage-1 checkpoint: the reference stage-3 config trains from a random
initialisation (``pretrained=None``); stage 1 only mines the pairs.
"""

from __future__ import annotations

import pyarrow.parquet as pq
from pydantic import Field

from correlearn.config import StrictModel
from correlearn.data.readers import ShardedImages
from correlearn.methods.byol import byol_sgd
from correlearn.methods.orl import ORL, ORLConfig, RoIPairIndex, build_orl_batch
from correlearn.stage import StageContext, StageSpec
from correlearn.train.config import OptimConfig, TrainConfig
from correlearn.train.stage_run import train_configured
from stages.proposals import read_boxes


class PretrainObjectConfig(StrictModel):
    """ORL method, loop and optimiser of ORL stage 3 (Sec. 3.2): 800 epochs.

    Batch 256 as ``pretrain_image`` (the paper uses 512 on 8 GPUs; the lr scales linearly).
    """

    method: ORLConfig = Field(default_factory=ORLConfig)
    train: TrainConfig = Field(default_factory=lambda: TrainConfig(epochs=800, batch_size=256))
    optim: OptimConfig = Field(default_factory=byol_sgd)


def run(ctx: StageContext) -> dict:
    """Train ORL; writes ``backbone.pt``, ``backbone.json``, ``train/last.pt`` and pictures."""
    cfg: PretrainObjectConfig = ctx.config
    images = ShardedImages(ctx.input_path("shards"))
    boxes = read_boxes(ctx.input_path("proposals"), images.keys)
    pairs = RoIPairIndex(
        pq.read_table(ctx.input_path("correspondence") / "pairs.parquet"), images.keys
    )
    lonely = sum(pairs.num_neighbours(i) == 0 for i in range(len(images)))
    ctx.count("images_without_pairs", lonely)
    if lonely:
        ctx.info(f"{lonely} image(s) have no stored RoI pair: their inter pair is the whole image")
    batch_size = cfg.train.batch_size

    def build_batch(step, rng, gen):
        idx = rng.integers(0, len(images), size=batch_size)
        return build_orl_batch(images, pairs, boxes, idx, rng, cfg.method)

    return train_configured(ctx, lambda: ORL(cfg.method), build_batch, len(images), "orl")


STAGE = StageSpec(
    name="pretrain_object",
    version=2,  # 2: initial weights seeded from train.seed
    config_model=PretrainObjectConfig,
    run=run,
    inputs={"shards": "image_shards", "proposals": "proposals", "correspondence": "correspondence"},
    resumable=True,
    description="ORL object-level pre-training (stage 3)",
)
