"""The typed records round-trip through JSON and read older, minimal flow results (gc needs them)."""

from correlearn.gc import used_artifacts
from correlearn.records import CurvePoint, FlowRun, MethodEvaluation, StageRun


def test_a_flow_run_round_trips_through_plain_json():
    lp = StageRun("eval_label_propagation", "k1", "/a/k1", False, label="lp[vfs]", subject="vfs")
    ev = MethodEvaluation(
        "vfs", "pretrain_vfs", "vfs_resnet", [CurvePoint(120, lp)], {"random-s0": lp}
    )
    run = FlowRun("vfs", [lp], [ev], mlflow_run_id="r1")
    back = FlowRun.from_dict(run.to_dict())
    assert back == run and back.evaluations_of("eval_label_propagation") == {"vfs": lp}


def test_a_minimal_record_without_paths_still_names_what_it_used():
    old = {"flow": "byol", "stages": [{"stage": "x", "key": "y"}]}  # hand-written / older record
    run = FlowRun.from_dict(old)
    assert run.stages == [StageRun("x", "y", "", False)]
    assert used_artifacts(run) == {("x", "y")}
