"""Every evaluation stage is written by one factory, which owns metrics.json and the logged scalars."""

import json
from functools import partial
from types import SimpleNamespace

from correlearn.eval.eval_stage import Evaluation, run_evaluation
from stages import STAGES


def test_every_evaluation_stage_comes_from_the_one_factory():
    evals = sorted(n for n in STAGES if n.startswith("eval_"))
    assert {"eval_label_propagation", "eval_knn", "eval_pose", "eval_finetune"} <= set(evals)
    for name in evals:
        run = STAGES[name].run
        assert isinstance(run, partial) and run.func is run_evaluation, name
        assert "checkpoint" in STAGES[name].inputs and STAGES[name].resolve is not None, name


def _ctx(tmp_path):
    logged = {}
    return SimpleNamespace(out_dir=tmp_path, log_metrics=logged.update), logged


def test_metrics_json_the_float_scores_logged_and_the_meta_returned(tmp_path):
    ctx, logged = _ctx(tmp_path)
    metrics = {"JF": 0.5, "per_sequence": {"a": {"JF": 0.5}}, "count": 3}
    meta = run_evaluation(lambda c: Evaluation(metrics, meta={"preset": "vfs_resnet"}), ctx)
    assert meta == {"preset": "vfs_resnet"}
    assert json.loads((tmp_path / "metrics.json").read_text()) == metrics
    assert logged == {"JF": 0.5}


def test_an_evaluation_chooses_what_it_logs(tmp_path):
    ctx, logged = _ctx(tmp_path)
    run_evaluation(lambda c: Evaluation({"mAP": 0.7, "AP": {"cat": 0.7}}, logged={"x": 1.0}), ctx)
    assert logged == {"x": 1.0}
