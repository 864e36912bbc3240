"""The demo's tables from typed flow runs: the same text as the old dict-reading code printed."""

from dataclasses import replace

from correlearn.demo_tables import curve_table, demo_table, lp_metric, method_row
from correlearn.records import FlowRun
from tests.flow_run_fixtures import byol_run, vfs_run

# Printed by the dict-reading code that these tables replace (commit 60e7a0f) for the fixtures'
# old-style flow results: the tables must not change by a character.
DEMO = """\
| flow | checkpoint | steps | J&F | J | F | random init J&F (seeds) | seed spread | BN-calibrated init | gain vs best baseline | k-NN top-1 (random) |
|---|---|---|---|---|---|---|---|---|---|---|
| byol | byol | 60 | 0.565 | 0.515 | 0.615 | 0.265 / 0.295 | 0.030 | 0.375 | +0.190 | 41.2 (12.5) |
| vfs | vfs | 40 | 0.500 | 0.450 | 0.550 | - | - | - | - | - (-) |"""
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
