"""``train_siamfc_head`` + ``eval_tracking`` end to end on DAVIS-derived GOT-10k / OTB fixtures."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from correlearn.config import ConfigError
from correlearn.eval.otb import center_error, otb_report
from correlearn.pipeline import Pipeline
from correlearn.workspace import get_workspace
from stages import STAGES
from tests.eval.fixtures_tracking import make_got10k, make_otb

CONFIG = """
datasets:
  otb: {{root: {otb}, layout: otb}}
  got10k: {{root: {got}, layout: got10k}}
init_random: {{backbone: resnet_test}}
train_siamfc_head: {{exemplar_size: 32, instance_size: 64, batch_size: 2, max_steps: 3}}
eval_tracking: {{params: {{instance_size: 64, response_size: 5}}}}
"""


@pytest.fixture(scope="module")
def pipe(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tracking")
    truth = make_otb(tmp / "otb", n=5, size=(96, 160))
    make_got10k(tmp / "got", n=6)
    ws = get_workspace(tmp / "home")
    ws.artifacts.mkdir(parents=True)
    (tmp / "cfg.yaml").write_text(CONFIG.format(otb=tmp / "otb", got=tmp / "got"))
    torch.manual_seed(0)
    return Pipeline(tmp / "cfg.yaml", STAGES, ws), truth


def test_head_then_tracking_writes_boxes_metrics_plots_and_baseline(pipe):
    pipe, truth = pipe
    head = pipe.run_stage("train_siamfc_head", inputs={"checkpoint": pipe.run_stage("init_random")})
    hdir = Path(head.ref.path)
    assert {"head.pt", "head.json", "backbone.pt", "backbone.json", "loss.png"} <= {
        p.name for p in hdir.iterdir()
    }
    assert json.loads((hdir / "head.json").read_text())["exemplar_size"] == 32
    res = pipe.run_stage("eval_tracking", inputs={"checkpoint": head})
    out = Path(res.ref.path)
    m = json.loads((out / "metrics.json").read_text())
    written = {}
    for seq, gt in truth.items():
        pred = np.loadtxt(out / "boxes" / f"{seq}.txt", delimiter=",")
        assert pred.shape == (5, 4) and np.array_equal(pred[0], gt[0])
        written[seq] = (pred, gt)
        assert (out / "pictures" / f"{seq}.jpg").is_file()
        # Copy-the-first-box precision, by hand: frames whose centre stayed within 20 px.
        frac = (center_error(np.repeat(gt[:1], 5, 0), gt) <= 20).mean()
        assert m["copy_first_box"]["per_sequence"][seq]["precision"] == pytest.approx(100 * frac)
    assert m["precision"] == pytest.approx(otb_report(written)["precision"])
    assert 0 <= m["success"] <= 100 and set(m["per_sequence"]) == set(truth)
    assert (out / "success_plots.png").is_file() and (out / "precision_plots.png").is_file()
    meta = json.loads((out / "manifest.json").read_text())["metadata"]
    assert meta["total_stride"] == 8 and meta["params"]["exemplar_size"] == 32


def test_plain_xcorr_runs_on_any_checkpoint_and_a_missing_head_is_an_error(pipe):
    pipe, truth = pipe
    ckpt = {"checkpoint": pipe.run_stage("init_random")}
    with pytest.raises(ConfigError, match="has no head.pt"):
        pipe.run_stage("eval_tracking", inputs=ckpt)
    pipe.raw["eval_tracking"]["head"] = "none"
    pipe.raw["eval_tracking"]["params"]["exemplar_size"] = 32
    try:
        res = pipe.run_stage("eval_tracking", inputs=ckpt)
        m = json.loads((Path(res.ref.path) / "metrics.json").read_text())
        assert set(m["per_sequence"]) == set(truth)
    finally:
        pipe.raw["eval_tracking"] = {"params": {"instance_size": 64, "response_size": 5}}
