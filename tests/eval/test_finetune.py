"""Fine-tuning recipe pieces: layer-wise lr decay groups, recipes, split, the classifier."""

import numpy as np
import pytest
import torch

from correlearn.eval.finetune import Classifier, stratified_split
from correlearn.eval.finetune_recipe import FinetuneHParams, param_groups, recipe
from correlearn.models import build_backbone


def test_layer_wise_decay_scales_blocks_from_the_head_down():
    model = Classifier(build_backbone("vit_test_patch16", img_size=32), 3, "avg")
    groups = param_groups(model, 0.05, 0.5, "backbone.model.")
    scale_of = {}
    for g in groups:
        for p in g["params"]:
            scale_of[id(p)] = (g["lr_scale"], g["weight_decay"])
    vit = model.backbone.model
    # 2 blocks: embeddings 0.5^3, block 0 0.5^2, block 1 0.5^1, head and fc_norm 0.5^0.
    assert scale_of[id(vit.patch_embed.proj.weight)] == (0.125, 0.05)
    assert scale_of[id(vit.cls_token)] == (0.125, 0.0)  # no weight decay on tokens
    assert scale_of[id(vit.pos_embed)] == (0.125, 0.0)
    assert scale_of[id(vit.blocks[0].attn.qkv.weight)] == (0.25, 0.05)
    assert scale_of[id(vit.blocks[1].mlp.fc1.bias)] == (0.5, 0.0)  # biases: no decay
    assert scale_of[id(model.head.weight)] == (1.0, 0.05)
    assert scale_of[id(model.fc_norm.weight)] == (1.0, 0.0)
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))


def test_recipes_follow_the_backbone_and_reject_unknown_keys():
    assert recipe("auto", "vit_small_patch16", {}).optimizer == "adamw"
    r = recipe("auto", "resnet50", {})
    assert (r.optimizer, r.loss, r.drop_path, r.train_size) == ("lamb", "bce", 0.0, 160)
    assert recipe("vit_mae", "resnet18", {"layer_decay": 0.65}).layer_decay == 0.65
    with pytest.raises(ValueError, match="layer_decy"):
        FinetuneHParams.model_validate({"layer_decy": 0.65})


def test_stratified_split_keeps_every_class_on_both_sides():
    labels = np.array([0] * 5 + [1] * 2 + [2] * 10)
    tr, te = stratified_split(labels, 0.2, None)
    assert te.tolist() == [4, 6, 15, 16]  # the last 20% (at least one) of each class
    assert set(labels[tr]) == {0, 1, 2} and len(tr) + len(te) == 17
    tr2, te2 = stratified_split(labels, 0.2, np.random.default_rng(0))
    assert len(te2) == 4 and set(labels[te2]) == {0, 1, 2}


def test_classifier_pools_patch_tokens_or_res5():
    torch.manual_seed(0)
    vit = Classifier(build_backbone("vit_test_patch16", img_size=32), 4, "avg")
    x = torch.randn(2, 3, 32, 32)
    tokens = vit.backbone.forward_tokens(x)[:, 1:].mean(1)
    assert torch.allclose(vit(x), vit.head(vit.fc_norm(tokens)))
    res = Classifier(build_backbone("resnet_test"), 4, "avg")
    assert res(x).shape == (2, 4) and not res.avg


def test_the_evaluation_crop_is_the_references_095():
    """CIM util/datasets.py and RSB evaluate at crop 0.95: resize to 235, centre-crop 224."""
    from correlearn.eval.finetune import transforms
    from correlearn.eval.finetune_recipe import recipe

    for name in ("vit_mae", "resnet_rsb_a3"):
        test = transforms(recipe(name, "vit_small_patch16", {}))[1]
        assert test.transforms[0].size == 235 and test.transforms[1].size == (224, 224)
