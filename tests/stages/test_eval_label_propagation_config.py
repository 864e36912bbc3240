"""The eval stage's own config: fp32 features by default (as the reference codes)."""

import pytest

from stages.eval_label_propagation import EvalLabelPropConfig, choose_preset


def test_eval_stage_precision_is_fp32_by_default_and_checked():
    assert EvalLabelPropConfig().precision == "fp32"
    assert EvalLabelPropConfig(precision="bf16").precision == "bf16"
    with pytest.raises(ValueError, match="precision"):
        EvalLabelPropConfig(precision="fp16")


def test_choose_preset_follows_the_checkpoint_unless_given():
    assert choose_preset("auto", {"backbone": "resnet18"}) == "vfs_resnet"
    assert (
        choose_preset("auto", {"backbone": "vit_small_patch16", "method": "siammae"})
        == "siammae_vit"
    )
    assert choose_preset("auto", {"backbone": "vit_small_patch16", "method": "cim"}) == "dino_vit"
    # a random init is scored with the protocol of the checkpoint it stands beside
    assert choose_preset("siammae_vit", {"backbone": "vit_small_patch16"}) == "siammae_vit"
