"""``eval_finetune`` end to end on a class-folder set built from the davis-mini frames."""

import json
from pathlib import Path

import pytest
import torch

from correlearn.config import ConfigError
from correlearn.models import build_backbone
from correlearn.models.io import load_backbone
from correlearn.pipeline import Pipeline
from correlearn.workspace import get_workspace
from stages import STAGES
from tests.eval.fixtures_tracking import make_class_folders

CONFIG = """
datasets:
  cls: {{root: {root}, layout: class_folders}}
init_random: {{backbone: resnet_test}}
eval_finetune:
  dataset: cls
  max_steps: 3
  hparams: {{batch_size: 4, train_size: 32, test_size: 32}}
"""


@pytest.fixture(scope="module")
def pipe(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("finetune")
    make_class_folders(tmp / "cls", per_class=5)
    ws = get_workspace(tmp / "home")
    ws.artifacts.mkdir(parents=True)
    (tmp / "cfg.yaml").write_text(CONFIG.format(root=tmp / "cls"))
    torch.manual_seed(0)
    return Pipeline(tmp / "cfg.yaml", STAGES, ws)


def test_finetune_writes_top1_top5_and_a_changed_backbone(pipe):
    init = pipe.run_stage("init_random")
    res = pipe.run_stage("eval_finetune", inputs={"checkpoint": init})
    out = Path(res.ref.path)
    m = json.loads((out / "metrics.json").read_text())
    # 6 classes x 1 test image each: accuracies are multiples of 1/6.
    assert m["steps"] == 3 and 0 <= m["top1"] <= m["top5"] <= 100
    assert round(m["top1"] * 6 / 100, 6) == round(m["top1"] * 6 / 100)
    meta = json.loads((out / "manifest.json").read_text())
    assert meta["metadata"]["hparams"]["optimizer"] == "lamb"  # RSB A3 for a ResNet
    before = load_backbone(init.ref.path).state_dict()
    after = load_backbone(out).state_dict()
    assert any(
        not torch.equal(before[k], after[k]) for k in before if before[k].is_floating_point()
    )


def test_drop_path_on_a_resnet_is_an_error(pipe):
    pipe.raw["eval_finetune"]["hparams"]["drop_path"] = 0.1
    try:
        with pytest.raises(ConfigError, match="drop_path"):
            pipe.run_stage("eval_finetune", inputs={"checkpoint": pipe.run_stage("init_random")})
    finally:
        del pipe.raw["eval_finetune"]["hparams"]["drop_path"]


def test_a_vit_takes_the_mae_recipe_and_its_artifact_loads_as_a_checkpoint(pipe):
    pipe.raw["init_random"] = {"backbone": "vit_test_patch16", "backbone_kwargs": {"img_size": 32}}
    pipe.raw["eval_finetune"]["max_steps"] = 2
    try:
        res = pipe.run_stage("eval_finetune", inputs={"checkpoint": pipe.run_stage("init_random")})
        meta = json.loads((Path(res.ref.path) / "manifest.json").read_text())["metadata"]
        hp = meta["hparams"]
        assert (hp["optimizer"], hp["layer_decay"], hp["drop_path"]) == ("adamw", 0.8, 0.1)
        # CIM's script: 256 per GPU on a node of 8; 200 epochs at ViT-S width or below; crop 0.95.
        assert (hp["batch_size"], hp["accum_iter"], hp["epochs"]) == (4, 8, 200)
        assert hp["test_crop"] == 0.95 and hp["pos_embed"] == "sincos"
        vit = load_backbone(res.ref.path)  # fc_norm exported as the final norm
        assert vit(torch.zeros(1, 3, 32, 32)).shape == (1, 64)
        fixed = build_backbone("vit_test_patch16", img_size=32)
        fixed.set_pos_embed("sincos")  # CIM's models/vit.py: the table is fixed, never trained
        assert torch.equal(vit.model.pos_embed, fixed.model.pos_embed)
    finally:
        pipe.raw["init_random"] = {"backbone": "resnet_test"}
        pipe.raw["eval_finetune"]["max_steps"] = 3


def test_a_batch_larger_than_the_training_set_is_one_line(pipe):
    pipe.raw["eval_finetune"]["hparams"]["batch_size"] = 2048  # the recipes' batch
    try:
        with pytest.raises(ConfigError, match=r"batch_size: 2048 is larger than the 24 training"):
            pipe.run_stage("eval_finetune", inputs={"checkpoint": pipe.run_stage("init_random")})
    finally:
        pipe.raw["eval_finetune"]["hparams"]["batch_size"] = 4
