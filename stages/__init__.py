"""The stage registry: one small module per stage; no algorithm lives here."""

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
    knn,
    pretrain_cim,
    pretrain_image,
    pretrain_object,
    pretrain_siammae,
    pretrain_vfs,
    proposals,
    train_siamfc_head,
    video_shards,
)

STAGES: dict[str, StageSpec] = {
    m.STAGE.name: m.STAGE
    for m in (
        image_shards,
        video_shards,
        frame_index,
        init_random,
        import_checkpoint,
        pretrain_image,
        embed,
        knn,
        proposals,
        correspondence,
        pretrain_object,
        pretrain_cim,
        pretrain_vfs,
        pretrain_siammae,
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
}
