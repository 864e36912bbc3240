"""The stage registry: one small module per stage, and one training stage per registered method.

No algorithm lives here. The pre-training stages (``pretrain_byol``, ``pretrain_orl``,
``pretrain_cim``, ``pretrain_vfs``, ``pretrain_siammae``, ``pretrain_cropmae``) have no module of
their own: each is :func:`~correlearn.pretrain.stage.pretrain_stage` over its entry in the methods
registry (:data:`correlearn.pretrain.METHODS`), which names the stage, its version and its
description.
"""

from correlearn.pretrain import METHODS
from correlearn.pretrain.stage import pretrain_stage
from correlearn.stage import StageSpec
from stages import (
    correspondence,
    embed,
    eval_finetune,
    eval_knn,
    eval_label_propagation,
    eval_linear,
    eval_parts,
    eval_pose,
    eval_svm,
    eval_tracking,
    frame_index,
    image_shards,
    import_checkpoint,
    init_random,
    neighbours,
    proposals,
    train_siamfc_head,
    video_shards,
)

_MODULES = (
    image_shards,
    video_shards,
    frame_index,
    init_random,
    import_checkpoint,
    embed,
    neighbours,
    proposals,
    correspondence,
    eval_label_propagation,
    eval_knn,
    eval_linear,
    eval_pose,
    eval_parts,
    eval_svm,
    train_siamfc_head,
    eval_tracking,
    eval_finetune,
)

STAGES: dict[str, StageSpec] = {
    **{m.STAGE.name: m.STAGE for m in _MODULES},
    **{spec.stage: pretrain_stage(spec) for spec in METHODS.values()},
}
