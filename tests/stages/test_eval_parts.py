"""``eval_parts`` end to end on a VIP-layout fixture built from DAVIS masks (tiny random ResNet)."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from correlearn.eval.davis_metrics import read_mask
from correlearn.eval.parts import CLASSES, miou, score_video
from correlearn.pipeline import Pipeline
from correlearn.workspace import get_workspace
from stages import STAGES
from tests.eval.fixtures import make_vip

CONFIG = """
datasets:
  vip: {{root: {root}, layout: vip}}
init_random: {{backbone: resnet_test}}
eval_parts: {{image_size: 64}}
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("parts")
    truth = make_vip(tmp / "vip", n=5)
    ws = get_workspace(tmp / "home")
    ws.artifacts.mkdir(parents=True)
    (tmp / "cfg.yaml").write_text(CONFIG.format(root=tmp / "vip"))
    torch.manual_seed(0)
    pipe = Pipeline(tmp / "cfg.yaml", STAGES, ws)
    res = pipe.run_stage("eval_parts", inputs={"checkpoint": pipe.run_stage("init_random")})
    return Path(res.ref.path), truth


def test_parts_stage_masks_and_miou(run):
    out, truth = run
    m = json.loads((out / "metrics.json").read_text())
    assert set(m["per_class"]) == set(CLASSES)
    assert 0.0 < m["mIoU"] <= 100.0
    # Classes in neither GT nor predictions have no IoU; the 5 fixture classes all have one.
    assert {c for c, v in m["per_class"].items() if v is not None} == {
        "background", "hair", "upper-clothes", "right-leg", "left-leg"
    }  # fmt: skip
    hist = 0
    for video, gts in truth.items():
        preds = [read_mask(p) for p in sorted((out / "masks" / video).glob("*.png"))]
        assert len(preds) == 5 and preds[1].shape == (60, 80)  # back at the original size
        np.testing.assert_array_equal(preds[0], gts[0])
        assert set(np.unique(np.concatenate(preds))) <= set(np.unique(gts[0]))
        hist = hist + score_video(preds, gts)
        assert (out / "pictures" / f"{video}.png").is_file()
    # The stage's mIoU is that of the masks it wrote (frames 0, 1, 3 annotated, 2 and 4 not).
    assert m["mIoU"] == pytest.approx(miou(hist)["mIoU"])
    meta = json.loads((out / "manifest.json").read_text())["metadata"]
    lp = meta["label_propagation"]
    # VFS's DAVIS test_cfg for every task (VFS Sec. 4.1: the latest 20 frames), UVC's 560 square.
    assert (lp["context_frames"], lp["topk"], lp["radius"]) == (20, 10, 12)
    assert meta["protocol"]["long_side"] is None
