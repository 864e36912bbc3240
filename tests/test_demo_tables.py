"""The demo's tables from typed flow runs: the same text as the old dict-reading code printed."""

from dataclasses import replace

from correlearn.demo_tables import closing_tables, curve_table, demo_table, lp_metric, method_row
from correlearn.records import FlowRun, StageRun
from tests.flow_run_fixtures import artifact, byol_run, vfs_run

# The tables of the fixtures' flow results (which carry no held-out pretext report: "-").
DEMO = """\
| flow | checkpoint | steps | held-out pretext: learned (init seeds; trivial) learned? | J&F | J | F | random init J&F (seeds) | seed spread | BN-calibrated init | gain vs best baseline | k-NN top-1 (random) |
|---|---|---|---|---|---|---|---|---|---|---|---|
| byol | byol | 60 | - | 0.565 | 0.515 | 0.615 | 0.265 / 0.295 | 0.030 | 0.375 | +0.190 | 41.2 (12.5) |
| vfs | vfs | 40 | - | 0.500 | 0.450 | 0.550 | - | - | - | - | - (-) |"""
CURVE = """\
| checkpoint | J&F at steps |
|---|---|
| byol | 30: 0.365, 60: 0.565 |
| vfs | 40: 0.500 |"""


def _runs(tmp_path):
    byol, byol_old = byol_run(tmp_path / "byol")
    vfs, vfs_old = vfs_run(tmp_path / "vfs")
    return [byol, vfs], [byol_old, vfs_old]


def test_tables_are_the_old_text(tmp_path):
    runs, _ = _runs(tmp_path)
    assert demo_table(runs) == DEMO
    assert curve_table(runs) == CURVE


def test_the_curve_table_follows_only_when_a_curve_has_several_points(tmp_path):
    runs, _ = _runs(tmp_path)
    assert closing_tables(runs) == DEMO + "\n\nJ&F vs steps (held-out):\n\n" + CURVE
    # One point per checkpoint (``flow.curve_points: 1``): the demo table alone.
    assert closing_tables(runs[1:]) == demo_table(runs[1:])


def test_old_flow_results_give_the_same_tables(tmp_path):
    _, old = _runs(tmp_path)
    runs = [FlowRun.from_dict(d) for d in old]
    assert demo_table(runs) == DEMO and curve_table(runs) == CURVE
    # and so do the typed records after a trip through flow_result.json
    typed, _ = _runs(tmp_path / "again")
    assert demo_table([FlowRun.from_dict(r.to_dict()) for r in typed]) == DEMO


def test_row_of_an_unevaluated_checkpoint_has_no_numbers(tmp_path):
    runs, _ = _runs(tmp_path)
    evaluation = runs[0].evaluations[0]
    stopped = replace(
        evaluation, points=[*evaluation.points[:-1], replace(evaluation.points[-1], lp=None)]
    )
    row = method_row(stopped, "byol")
    assert (row.steps, row.jf, row.gain) == (None, None, None)
    assert row.random_jf == [0.265, 0.295] and row.curve[-1] == (60, None)
    assert lp_metric(None, "JF_mean") is None
    assert lp_metric(evaluation.knn, "top1") == 41.25 and lp_metric(evaluation.knn, "top5") is None


def test_the_pretext_column_reads_the_final_checkpoints_report(tmp_path):
    runs, _ = _runs(tmp_path)
    report = {
        "metric": "retrieval_top1",
        "higher_is_better": True,
        "learned": {"retrieval_top1": 0.25},
        "init": {"0": {"retrieval_top1": 0.05}, "1": {"retrieval_top1": 0.07}},
        "trivial": {"chance": {"retrieval_top1": 0.02}},
        "curve": [{"step": 0, "retrieval_top1": 0.05}, {"step": 60, "retrieval_top1": 0.25}],
    }
    ckpt = artifact(tmp_path, "pretrain_byol", "c" * 16, 9.0, metadata={"pretext": report})
    evaluation = runs[0].evaluations[0]
    final = replace(evaluation.points[-1], ckpt=StageRun(**ckpt, cache_hit=True))
    runs[0].evaluations[0] = replace(evaluation, points=[*evaluation.points[:-1], final])
    row = demo_table(runs).splitlines()[2]
    assert "retrieval_top1 0.250 (init 0.050 / 0.070; chance 0.020) yes" in row
    again = FlowRun.from_dict(runs[0].to_dict())  # the training run survives the JSON trip
    assert method_row(again.evaluations[0]).pretext.curve == [(0, 0.05), (60, 0.25)]
