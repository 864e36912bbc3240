"""The J&F parts of the report: evaluations grouped by subject, baselines last, one curve each."""

from dataclasses import replace

from correlearn.records import FlowRun
from correlearn.report.jf import jf_curve_figures, jf_section, lp_results
from tests.flow_run_fixtures import byol_run, vfs_run


def test_lp_results_by_subject_first_call_wins(tmp_path):
    run, _ = byol_run(tmp_path)
    again = replace(run.stages[3], key="0" * 16, path=str(tmp_path / "missing"))
    run.stages.append(again)  # a second call for the same checkpoint: the first one's numbers
    lp = lp_results(run)
    assert list(lp) == ["byol", "byol@30", "random-s0", "random-s1", "byol-bn-init"]
    assert (
        lp["byol"]["JF_mean"] == 0.565
        and lp["random-s1"]["per_sequence"]["bear"]["JF_mean"] == 0.35
    )


def test_calls_without_a_subject_are_not_evaluations(tmp_path):
    # Labels are for display: an old-style flow result (no subject) has no J&F columns.
    _, old = byol_run(tmp_path)
    assert lp_results(FlowRun.from_dict(old)) == {}
    assert "no label-propagation evaluation in this run" in jf_section([FlowRun.from_dict(old)])


def test_the_baselines_of_the_evaluations_come_last(tmp_path):
    run, _ = vfs_run(tmp_path)
    lp_vfs, lp_random = run.stages[1], run.stages[3]
    run.stages[1], run.stages[3] = lp_random, lp_vfs  # the baseline evaluated first
    html = jf_section([run])
    assert html.index("<th>vfs</th>") < html.index("<th>random-s0</th>")
    # Without the evaluation record, nothing says which checkpoint is a baseline: call order.
    html = jf_section([replace(run, evaluations=[])])
    assert html.index("<th>random-s0</th>") < html.index("<th>vfs</th>")


def test_one_curve_figure_per_evaluation_with_points(tmp_path):
    byol, _ = byol_run(tmp_path / "a")
    vfs, _ = vfs_run(tmp_path / "b")
    figs = jf_curve_figures([byol, vfs])
    assert [f.split("<figcaption>")[1].split("</")[0] for f in figs] == [
        "byol: held-out J&amp;F vs steps",
        "vfs: held-out J&amp;F vs steps",
    ]
    assert all('src="data:image/png;base64,' in f for f in figs)
    unevaluated = replace(vfs, stages=[], evaluations=[replace(vfs.evaluations[0], points=[])])
    assert jf_curve_figures([unevaluated]) == []
