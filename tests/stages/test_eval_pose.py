"""``eval_pose`` end to end on a JHMDB-layout fixture built from DAVIS masks (tiny random ResNet)."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from correlearn.config import ConfigError
from correlearn.eval.pose import normalized_distances, pck
from correlearn.pipeline import Pipeline
from correlearn.workspace import get_workspace
from stages import STAGES
from tests.eval.fixtures import make_jhmdb

CONFIG = """
datasets:
  jhmdb: {{root: {root}, layout: jhmdb}}
  wrong: {{root: {root}, layout: vip}}
init_random: {{backbone: resnet_test}}
eval_pose: {{image_size: 64}}
"""
N = 5


@pytest.fixture(scope="module")
def pipe(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pose")
    truth = make_jhmdb(tmp / "jhmdb", n=N)
    ws = get_workspace(tmp / "home")
    ws.artifacts.mkdir(parents=True)
    (tmp / "cfg.yaml").write_text(CONFIG.format(root=tmp / "jhmdb"))
    torch.manual_seed(0)
    return Pipeline(tmp / "cfg.yaml", STAGES, ws), truth


def test_pose_stage_writes_predictions_pck_and_pictures(pipe):
    pipe, truth = pipe
    res = pipe.run_stage("eval_pose", inputs={"checkpoint": pipe.run_stage("init_random")})
    out = Path(res.ref.path)
    m = json.loads((out / "metrics.json").read_text())
    assert 0.0 <= m["PCK_0.1"] <= m["PCK_0.2"] <= 100.0
    assert len(m["per_joint"]["PCK_0.1"]) == 15
    dists = []
    for video, joints in truth.items():
        pred = np.load(out / "keypoints" / f"{video.replace('/', '__')}.npy")
        assert pred.shape == (N, 15, 2)
        # Frame 0 is the given labels read back: within 1.5 feature cells (8 px here).
        visible = pred[0, :, 0] >= 0
        assert np.abs(pred[0][visible] - joints[0][visible]).max() < 64 / 8 * 1.5
        dists.append(normalized_distances(pred, joints))
        assert (out / "pictures" / f"{video.replace('/', '__')}.png").is_file()
    # The stage's PCK is the metric of the predictions it wrote, against the GT of the fixture.
    assert m["PCK_0.2"] == pytest.approx(pck(dists)["PCK_0.2"])
    meta = json.loads((out / "manifest.json").read_text())["metadata"]
    assert meta["label_propagation"]["context_frames"] == 20 and meta["preset"] == "vfs_resnet"
    assert meta["protocol"]["readout_topk"] == 5  # VFS jhmdb_dataset img2coord(topk=5)


def test_pose_stage_rejects_a_dataset_of_another_layout(pipe):
    pipe, _ = pipe
    pipe.raw["eval_pose"] = {"dataset": "wrong"}
    try:
        with pytest.raises(ConfigError, match="datasets.wrong.layout: 'vip'"):
            pipe.run_stage("eval_pose", inputs={"checkpoint": pipe.run_stage("init_random")})
    finally:
        pipe.raw["eval_pose"] = {"image_size": 64}
