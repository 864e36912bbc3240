"""``eval_svm`` end to end on a VOC07-layout fixture built from DAVIS frames (tiny random ResNet)."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from correlearn.eval.svm import average_precision, make_svm
from correlearn.pipeline import Pipeline
from correlearn.workspace import get_workspace
from stages import STAGES
from tests.eval.fixtures import make_voc07

CONFIG = """
datasets:
  voc: {{root: {root}, layout: voc07}}
init_random: {{backbone: resnet_test}}
eval_svm: {{dataset: voc, short_side: 73, image_size: 64, costs: [1.0, 0.1], k_values: [1],
           samples: 2}}
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("svm")
    truth = make_voc07(tmp / "voc", per_seq=3)
    ws = get_workspace(tmp / "home")
    ws.artifacts.mkdir(parents=True)
    (tmp / "cfg.yaml").write_text(CONFIG.format(root=tmp / "voc"))
    torch.manual_seed(0)
    pipe = Pipeline(tmp / "cfg.yaml", STAGES, ws)
    res = pipe.run_stage("eval_svm", inputs={"checkpoint": pipe.run_stage("init_random")})
    return Path(res.ref.path), truth


def test_svm_stage_full_and_low_shot(run):
    out, truth = run
    m = json.loads((out / "metrics.json").read_text())
    assert m["classes"] == ["dog", "motorbike", "person"]
    assert m["mAP"] == pytest.approx(np.mean(list(m["AP"].values())))
    assert set(m["chosen_costs"].values()) <= {1.0, 0.1}
    assert set(m["low_shot"]) == {"k1"} and 0 < m["low_shot"]["k1"]["mean"] <= 100
    # Re-score one class from the stage's own features: the AP of the chosen-cost SVM.
    tr, te = np.load(out / "features_trainval.npy"), np.load(out / "features_test.npy")
    # resnet_test res5 has 512 channels, pooled to 2x2 cells.
    assert tr.shape[0] == len(truth["trainval"]) and te.shape[1] == tr.shape[1] == 4 * 512
    y = np.where(truth["trainval"][:, 0] == 1, 1, -1)
    clf = make_svm(m["chosen_costs"]["dog"]).fit(tr.astype(np.float64), y)
    keep = truth["test"][:, 0] != -1
    ap = average_precision(truth["test"][keep, 0], clf.decision_function(te[keep]))
    assert m["AP"]["dog"] == pytest.approx(100 * ap, abs=1e-4)
