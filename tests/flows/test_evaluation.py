"""How a method flow evaluates: curve budgets, like-for-like baselines, the BN-calibrated init."""

import json
from pathlib import Path

import pytest

from correlearn.config import ConfigError
from correlearn.records import StageRun
from flows.evaluation import FlowOptions, curve_budgets, flow_options, train_and_evaluate


def test_curve_budgets_end_at_the_budget_and_ascend():
    assert curve_budgets(120, 3) == [40, 80, 120]
    assert curve_budgets(100, 4) == [25, 50, 75, 100]
    assert curve_budgets(7, 1) == [7]
    assert curve_budgets(2, 3) == [2]  # fewer steps than points: only the final checkpoint
    assert curve_budgets(None, 4) == [None]  # no step budget: no curve


def test_flow_section_is_validated_up_front():
    assert flow_options({}, "demo.yaml") == FlowOptions()
    with pytest.raises(ConfigError, match="flow.curve_point"):
        flow_options({"flow": {"curve_point": 3}}, "demo.yaml")
    with pytest.raises(ConfigError, match="flow.baseline_seeds"):
        flow_options({"flow": {"baseline_seeds": []}}, "demo.yaml")


class _Train:
    max_steps = 90


class _Section:
    train = _Train()


class _Session:
    """Records the stage calls a flow makes; each result is a folder with a manifest."""

    def __init__(self, root: Path, backbone_has_bn: bool):
        self.root, self.bn, self.calls, self.records = root, backbone_has_bn, [], []

    def section(self, stage):
        return _Section()

    def has_batchnorm(self, stage):
        return self.bn

    def run(self, stage, inputs=None, overrides=None, label=None, subject=None):
        path = self.root / f"{len(self.calls):02d}"
        path.mkdir()
        meta = {"preset": "vfs_resnet"} if stage == "eval_label_propagation" else {}
        if stage.startswith("pretrain"):
            meta = {"steps": (overrides or {}).get("train", {}).get("max_steps")}
        (path / "manifest.json").write_text(json.dumps({"metadata": meta}))
        self.calls.append(
            {
                "stage": stage,
                "inputs": inputs,
                "overrides": overrides,
                "label": label,
                "subject": subject,
            }
        )
        return StageRun(stage, str(len(self.calls)), str(path), False, label=label, subject=subject)

    def random_init(self, stage, seed=0):
        return self.run("init_random", overrides={"seed": seed})

    def record_evaluation(self, record):
        self.records.append(record)


def test_train_and_evaluate_wires_curve_and_like_for_like_baselines(tmp_path):
    s = _Session(tmp_path, backbone_has_bn=True)
    opts = FlowOptions(curve_points=3, baseline_seeds=[0, 1], bn_calibration_steps=20)
    train_and_evaluate(s, "vfs", "pretrain_vfs", {"videos": {"key": "v"}}, opts)
    trains = [c for c in s.calls if c["stage"] == "pretrain_vfs"]
    budgets = [c["overrides"]["train"]["max_steps"] for c in trains]
    assert budgets == [30, 60, 90, 20]  # the curve, then the BN-calibration run
    assert trains[-1]["overrides"]["optim"] == {"base_lr": 0.0, "min_lr": 0.0}
    assert trains[-1]["overrides"]["val"] == {"dataset": None}  # no pretext score for it
    lps = [c for c in s.calls if c["stage"] == "eval_label_propagation"]
    # The final checkpoint resolves its preset; every other evaluation is pinned to it.
    assert lps[0]["overrides"] is None and lps[0]["subject"] == "vfs"
    assert all(c["overrides"] == {"preset": "vfs_resnet"} for c in lps[1:])
    subjects = [c["subject"] for c in lps]
    assert subjects == ["vfs", "vfs@30", "vfs@60", "random-s0", "random-s1", "vfs-bn-init"]
    assert lps[3]["label"] == "eval_label_propagation[random-s0]"
    (record,) = s.records
    assert [p.steps for p in record.points] == [30, 60, 90]
    assert [p.lp.subject for p in record.points] == ["vfs@30", "vfs@60", "vfs"]
    assert set(record.baselines) == {"random-s0", "random-s1", "bn-init"}
    assert record.baselines["bn-init"].subject == "vfs-bn-init"
    assert record.preset == "vfs_resnet" and record.knn.stage == "eval_knn"
    assert (record.knn.subject, record.knn_random.subject) == ("vfs", "random")


def test_no_bn_calibration_for_a_backbone_without_batchnorm(tmp_path):
    s = _Session(tmp_path, backbone_has_bn=False)
    opts = FlowOptions(curve_points=1, bn_calibration_steps=20, knn=False)
    train_and_evaluate(s, "siammae", "pretrain_siammae", {}, opts)
    assert [c["stage"] for c in s.calls].count("pretrain_siammae") == 1
    assert set(s.records[0].baselines) == {"random-s0", "random-s1"}


def test_a_given_checkpoint_is_scored_against_random_inits_of_its_backbone(tmp_path, monkeypatch):
    from correlearn.artifacts import ArtifactStore
    from correlearn.models.io import write_backbone_json
    from flows.evaluation import evaluate_checkpoint

    monkeypatch.setenv("CORRELEARN_HOME", str(tmp_path / "home"))
    store = ArtifactStore(tmp_path / "home" / "artifacts")
    key = "f00d" + "0" * 12
    partial = store.begin("import_checkpoint", key, keep_partial=False)
    (partial / "backbone.pt").write_bytes(b"weights")
    write_backbone_json(partial, "resnet18", {"strides": [1, 2, 1, 1]}, "vfs")
    manifest = {"stage": "import_checkpoint", "key": key, "metadata": {"steps": 5}}
    store.commit("import_checkpoint", key, manifest)

    s = _Session(tmp_path, backbone_has_bn=True)
    s.random_backbone = lambda name, kwargs, seed: s.run(
        "init_random", overrides={"backbone": name, "backbone_kwargs": kwargs, "seed": seed}
    )
    evaluate_checkpoint(s, "f00d", FlowOptions(baseline_seeds=[3, 4]))
    inits = [c["overrides"] for c in s.calls if c["stage"] == "init_random"]
    assert inits == [
        {"backbone": "resnet18", "backbone_kwargs": {"strides": [1, 2, 1, 1]}, "seed": seed}
        for seed in (3, 4)
    ]
    lps = [c for c in s.calls if c["stage"] == "eval_label_propagation"]
    assert lps[0]["inputs"]["checkpoint"].key == key
    assert all(c["overrides"] == {"preset": "vfs_resnet"} for c in lps[1:])
    (record,) = s.records
    assert record.name == "import_checkpoint:f00d0000"
    assert set(record.baselines) == {"random-s3", "random-s4"}


def test_further_protocols_run_on_the_final_checkpoint_and_the_random_init(tmp_path):
    s = _Session(tmp_path, backbone_has_bn=False)
    opts = FlowOptions(curve_points=2, knn=False, protocols=["eval_pose", "eval_tracking"])
    train_and_evaluate(s, "vfs", "pretrain_vfs", {}, opts)
    final = [c for c in s.calls if c["stage"] == "pretrain_vfs"][-1]
    for proto in ("eval_pose", "eval_tracking"):
        runs = [c for c in s.calls if c["stage"] == proto]
        assert [c["label"] for c in runs] == [f"{proto}[vfs]", f"{proto}[random]"]
        assert runs[0]["inputs"]["checkpoint"].key == str(s.calls.index(final) + 1)
        assert runs[1]["inputs"]["checkpoint"].stage == "init_random"
    assert set(s.records[0].protocols) == {"eval_pose", "eval_tracking"}
