"""Results budgeted in steps are reproducible: two fresh runs give bitwise the same weights."""

from pathlib import Path

import pytest
import torch

from correlearn.pipeline import Pipeline
from correlearn.workspace import get_workspace
from stages import STAGES

CONFIG = """
datasets:
  d: {{root: {root}, layout: davis}}
video_shards: {{dataset: d, max_short_side: 64}}
frame_index: {{gap_ranges: [[1, 4]]}}
pretrain_vfs:
  method: {{backbone: resnet_test, image_size: 32, sampler: {{kind: distant, n: 4}}}}
  train: {{batch_size: 2, epochs: 3, max_steps: 3, seed: {seed}, num_workers: 0, device: cpu, log_every: 1}}
"""


def _train(tmp: Path, root: Path, name: str, seed: int = 0) -> dict[str, torch.Tensor]:
    ws = get_workspace(tmp / name)
    ws.artifacts.mkdir(parents=True)
    cfg = tmp / f"{name}.yaml"
    cfg.write_text(CONFIG.format(root=root, seed=seed))
    res = Pipeline(cfg, STAGES, ws).run_stage("pretrain_vfs")
    return torch.load(Path(res.ref.path) / "backbone.pt", weights_only=True)


@pytest.mark.timeout(300)
def test_two_fresh_step_budgeted_runs_give_bitwise_equal_weights(tmp_path, make_davis):
    root = make_davis(tmp_path / "davis", n=8)
    a = _train(tmp_path, root, "first")
    b = _train(tmp_path, root, "second")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    # The comparison is sensitive: another seed gives other weights.
    c = _train(tmp_path, root, "other-seed", seed=1)
    assert not all(torch.equal(a[k], c[k]) for k in a)
