"""Multi-object DAVIS 2017 end to end: ``eval_label_propagation`` on two composited DAVIS objects.

The fixture (``tests/eval/fixtures.py``) has palette masks with ids 1..2, an object that vanishes
and reappears, and an object absent from the first frame.
"""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from correlearn.eval.davis_metrics import read_mask
from correlearn.pipeline import Pipeline
from correlearn.workspace import get_workspace
from stages import STAGES
from tests.eval.fixtures import make_multi_object_davis

CONFIG = """
datasets:
  d: {{root: {root}, layout: davis}}
init_random: {{backbone: resnet_test}}
eval_label_propagation: {{dataset: d, params: {{short_side: 64}}}}
"""
N = 7


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("multiobj")
    gts = make_multi_object_davis(tmp / "davis", n=N)
    ws = get_workspace(tmp / "home")
    ws.artifacts.mkdir(parents=True)
    (tmp / "cfg.yaml").write_text(CONFIG.format(root=tmp / "davis"))
    torch.manual_seed(0)
    pipe = Pipeline(tmp / "cfg.yaml", STAGES, ws)
    res = pipe.run_stage(
        "eval_label_propagation", inputs={"checkpoint": pipe.run_stage("init_random")}
    )
    return Path(res.ref.path), gts


def test_per_object_scores_and_masks(result):
    out, gts = result
    m = json.loads((out / "metrics.json").read_text())
    assert set(m["per_object"]) == {
        "two-objects_1",
        "two-objects_2",
        "late-object_1",
        "late-object_2",
    }
    for seq in ("two-objects", "late-object"):
        objs = [m["per_object"][f"{seq}_{k}"]["J_mean"] for k in (1, 2)]
        assert m["per_sequence"][seq]["J_mean"] == pytest.approx(np.mean(objs))
    preds = [read_mask(out / "masks" / "late-object" / f"{t:05d}.png") for t in range(N)]
    # Label propagation only knows the first frame's ids: object 1 of late-object is never
    # predicted, so it scores 1 on scored frame 1 (absent on both sides) and 0 on frames 2..5.
    assert all(1 not in np.unique(p) for p in preds)
    assert m["per_object"]["late-object_1"]["J_mean"] == pytest.approx(1 / (N - 2))
    assert m["per_object"]["late-object_1"]["F_mean"] == pytest.approx(1 / (N - 2))
    two = [read_mask(out / "masks" / "two-objects" / f"{t:05d}.png") for t in range(N)]
    np.testing.assert_array_equal(two[0], gts["two-objects"][0])
    assert {1, 2} <= set(np.unique(two[1]))  # both objects carried into frame 1
    assert m["J_mean"] == pytest.approx(np.mean([v["J_mean"] for v in m["per_object"].values()]))
