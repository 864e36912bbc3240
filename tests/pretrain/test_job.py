"""A config value reaches the training function through typed objects, with the pipeline config:
in one process and under torchrun alike; editing the YAML after the flow started changes nothing."""

import json
from dataclasses import replace
from pathlib import Path

from correlearn.pipeline import Pipeline
from correlearn.pretrain import METHODS
from correlearn.pretrain.job import JOB_FILE, TrainingJob
from correlearn.pretrain.spec import TrainingData
from correlearn.pretrain.stage import pretrain_stage
from correlearn.workspace import get_workspace
from stages import STAGES

CONFIG = """
datasets:
  d: {{root: {root}, layout: davis}}
image_shards: {{dataset: d, max_short_side: 96}}
pretrain_byol:
  method: {{backbone: resnet_test, proj_hidden_dim: 32, proj_dim: 16, pred_hidden_dim: 32, image_size: 64}}
  train: {{batch_size: 4, max_steps: {steps}, num_workers: 0, device: cpu, log_every: 1, devices: {devices}}}
"""


def _read_then_edit(tmp: Path, make_davis, devices: int) -> Pipeline:
    """A pipeline bound to the mapping read from a config whose file is then edited (a running flow)."""
    root = make_davis(tmp / "davis", n=4, masks=False)
    ws = get_workspace(tmp / "home")
    ws.artifacts.mkdir(parents=True)
    cfg = tmp / "cfg.yaml"
    cfg.write_text(CONFIG.format(root=root, steps=2, devices=devices))
    raw = Pipeline(cfg, STAGES, ws).raw  # what flow_session reads at the flow's start
    cfg.write_text(CONFIG.format(root=root, steps=5, devices=devices))  # edited mid-flow
    return Pipeline(cfg, STAGES, ws, raw=raw)


def test_one_process_trains_the_config_read_at_the_start(tmp_path, make_davis, monkeypatch):
    pipe = _read_then_edit(tmp_path, make_davis, devices=1)
    seen = []
    byol = METHODS["byol"]

    def spy(data: TrainingData, cfg, step, rng, gen):
        seen.append((type(cfg).__name__, cfg.train.max_steps, cfg.method.proj_dim))
        return byol.batch(data, cfg, step, rng, gen)

    spec = STAGES["pretrain_byol"]
    stage = pretrain_stage(replace(byol, batch=spy), spec.name, spec.version, spec.description)
    monkeypatch.setitem(pipe.registry, "pretrain_byol", stage)
    res = pipe.run_stage("pretrain_byol")
    assert res.manifest()["metadata"]["steps"] == 2
    assert set(seen) == {("PretrainBYOLConfig", 2, 16)}  # typed, and the value read at the start


def test_torchrun_workers_train_the_config_read_at_the_start_not_the_edited_file(
    tmp_path, make_davis
):
    pipe = _read_then_edit(tmp_path, make_davis, devices=2)
    res = pipe.run_stage("pretrain_byol")
    job = TrainingJob.read(Path(res.path) / JOB_FILE)
    assert job.stage_config(METHODS["byol"]).train.max_steps == 2
    assert job.pipeline_config["pretrain_byol"]["train"]["max_steps"] == 2
    assert set(job.inputs) == {"shards"} and job.method == "byol"
    manifest = res.manifest()
    assert manifest["metadata"]["steps"] == 2 and manifest["config"]["train"]["max_steps"] == 2
    # the workers' own record: rank 0's checkpoint is at step 2, not at the edited file's 5
    sidecar = json.loads((Path(res.path) / "train" / "last.pt.json").read_text())
    assert sidecar["step"] == 2
