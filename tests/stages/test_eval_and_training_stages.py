"""Evaluation stages and the training-stage glue through the stage runner, on real DAVIS frames:
random-init baseline -> label propagation (J&F), k-NN/linear probes, and a 2-process torchrun run."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from correlearn.eval.davis_metrics import read_mask
from correlearn.models.io import BackboneLoadError, load_backbone
from correlearn.pipeline import Pipeline
from correlearn.workspace import get_workspace
from stages import STAGES

DAVIS = Path(__file__).resolve().parents[2] / "data" / "davis-mini"
CONFIG = """
datasets:
  d: {{root: {root}, layout: davis}}
image_shards: {{dataset: d, max_short_side: 96}}
init_random: {{backbone: resnet_test}}
eval_label_propagation:
  dataset: d
  params: {{short_side: 96}}
eval_knn: {{dataset: d, image_size: 64, split: temporal, k: 3}}
eval_linear: {{dataset: d, image_size: 64, split: temporal, epochs: 20}}
pretrain_byol:
  method: {{backbone: resnet_test, proj_hidden_dim: 64, proj_dim: 32, pred_hidden_dim: 64, image_size: 64}}
  train: {{batch_size: 4, max_steps: 3, num_workers: 0, device: cpu, log_every: 1, devices: 2}}
"""


@pytest.fixture(scope="module")
def pipe(tmp_path_factory, make_davis):
    tmp = tmp_path_factory.mktemp("evalstages")
    root = make_davis(tmp / "davis", n=8)
    ws = get_workspace(tmp / "home")
    ws.artifacts.mkdir(parents=True)
    cfg = tmp / "cfg.yaml"
    cfg.write_text(CONFIG.format(root=root))
    torch.manual_seed(0)
    return Pipeline(cfg, STAGES, ws)


def test_label_propagation_on_random_init_writes_masks_and_jf(pipe):
    rand = pipe.run_stage("init_random")
    res = pipe.run_stage("eval_label_propagation", inputs={"checkpoint": rand})
    out = Path(res.ref.path)
    m = json.loads((out / "metrics.json").read_text())
    for k in ("JF_mean", "J_mean", "F_mean", "J_recall", "F_recall", "J_decay", "F_decay"):
        assert 0.0 <= m[k] <= 1.0 or k.endswith("decay")
    assert set(m["per_sequence"]) == {"dog-agility", "rollerblade"}
    assert m["JF_mean"] == pytest.approx((m["J_mean"] + m["F_mean"]) / 2)
    pred = read_mask(out / "masks" / "rollerblade" / "00003.png")
    assert pred.shape == (480, 854) and set(np.unique(pred)) <= {0, 1}
    first = read_mask(out / "masks" / "rollerblade" / "00000.png")
    assert np.array_equal(first, read_mask(DAVIS / "Annotations/480p/rollerblade/00000.png"))
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["metadata"]["preset"] == "vfs_resnet"
    assert (out / "pictures" / "rollerblade.png").is_file()


def test_probes_on_random_init(pipe):
    rand = pipe.run_stage("init_random")
    for stage in ("eval_knn", "eval_linear"):
        res = pipe.run_stage(stage, inputs={"checkpoint": rand})
        m = json.loads((Path(res.ref.path) / "metrics.json").read_text())
        assert set(m) == {"top1"} and 0.0 <= m["top1"] <= 100.0  # 2 classes: no top5


def test_checkpoint_without_backbone_is_a_clear_error(tmp_path):
    with pytest.raises(BackboneLoadError, match="backbone.json"):
        load_backbone(tmp_path)


def test_two_process_torchrun_training_stage(pipe):
    """devices: 2 launches torchrun (gloo on CPU); rank 0 exports a loadable backbone."""
    res = pipe.run_stage("pretrain_byol")
    out = Path(res.ref.path)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["metadata"]["steps"] == 3
    assert (out / "torchrun_job.json").is_file()
    backbone = load_backbone(out)
    assert backbone(torch.zeros(1, 3, 64, 64)).shape == (1, backbone.out_dim)
