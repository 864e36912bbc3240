"""The probe-stage factory: a probe is its config model and its classifier."""

import torch
from pydantic import Field

from correlearn.eval.probe_data import ProbeDataConfig, resolve_probe_data
from correlearn.eval.probe_stage import probe_stage
from correlearn.eval.probes import knn_classify


class _Config(ProbeDataConfig):
    k: int = Field(3, ge=1)


def _probe(f, cfg):
    return knn_classify(f["train"], f["train_labels"], f["test"], f["test_labels"], cfg.k)


def test_factory_declares_the_checkpoint_input_and_the_dataset_key_material():
    spec = probe_stage("eval_toy", 7, _Config, _probe, "toy probe")
    assert (spec.name, spec.version, spec.config_model, spec.description) == (
        "eval_toy", 7, _Config, "toy probe",
    )  # fmt: skip
    assert spec.inputs == {"checkpoint": "pretrain_byol"} and spec.resolve is resolve_probe_data
    assert not spec.resumable and spec.units is None


def test_run_writes_the_probe_metrics(tmp_path, monkeypatch):
    import correlearn.eval.probe_stage as probe_stage_mod

    feats = {
        "train": torch.eye(4), "train_labels": torch.tensor([0, 1, 2, 3]),
        "test": torch.eye(4), "test_labels": torch.tensor([0, 1, 2, 3]),
    }  # fmt: skip
    monkeypatch.setattr(probe_stage_mod, "probe_features", lambda ctx, cfg: feats)

    class Ctx:
        config, out_dir, logged = _Config(k=1), tmp_path, {}

        def log_metrics(self, metrics):
            self.logged.update(metrics)

    ctx = Ctx()
    assert probe_stage("eval_toy", 1, _Config, _probe, "").run(ctx) == {"top1": 100.0}
    assert (tmp_path / "metrics.json").read_text() == '{\n  "top1": 100.0\n}'
    assert ctx.logged == {"top1": 100.0}
