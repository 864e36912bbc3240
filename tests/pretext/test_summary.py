"""PretextSummary: the verdict of a manifest's held-out pretext report, in either direction."""

import pytest

from correlearn.pretext.summary import PretextSummary


def _report(metric, learned, inits, trivial=None, higher=None, curve=None):
    report = {
        "metric": metric,
        "learned": {metric: learned, "other": 123.0},
        "init": {str(i): {metric: v} for i, v in enumerate(inits)},
        "trivial": {k: {metric: v} for k, v in (trivial or {}).items()},
        "curve": [{"step": s, metric: v} for s, v in (curve or [])],
    }
    if higher is not None:
        report["higher_is_better"] = higher
    return report


def test_higher_is_better_learned_task():
    s = PretextSummary.from_report(
        _report(
            "retrieval_top1", 0.5, [0.125, 0.25], {"chance": 0.1}, curve=[(0, 0.125), (10, 0.5)]
        )
    )
    assert s.metric == "retrieval_top1" and s.higher_is_better  # direction defaults to higher
    assert s.learned == 0.5 and s.inits == [0.125, 0.25] and s.trivial == {"chance": 0.1}
    assert s.curve == [(0, 0.125), (10, 0.5)]
    assert s.seed_spread == 0.125 and s.gain_over_init == 0.25  # over the best init, 0.25
    assert s.beats_init and s.beats_trivial and s.learned_task
    cell = s.cell()
    assert cell.endswith(" yes") and " no" not in cell
    assert cell == "0.500 (init 0.125 / 0.250; chance 0.100) yes"


@pytest.mark.parametrize("learned", [0.75, 0.625, 0.25])
def test_gain_not_above_the_seed_spread_is_no(learned):
    # Inits 0.25 and 0.5: spread 0.25. Gains 0.25 (equal), 0.125 (below) and -0.25 (worse).
    s = PretextSummary.from_report(_report("retrieval_top1", learned, [0.25, 0.5], {"chance": 0.0}))
    assert s.gain_over_init == learned - 0.5
    assert not s.beats_init and s.beats_trivial and not s.learned_task
    assert s.cell().endswith(" no")


def test_lower_is_better_reconstruction_error():
    trivial = {"copy_past": 0.625, "patch_mean": 0.875}
    s = PretextSummary.from_report(
        _report("recon_error", 0.5, [0.875, 0.75], trivial, higher=False)
    )
    assert not s.higher_is_better
    # Best init is the lowest, 0.75; gain 0.25 > spread 0.125; below both trivial errors.
    assert s.gain_over_init == 0.25 and s.seed_spread == 0.125
    assert s.beats_init and s.beats_trivial and s.learned_task
    assert s.cell().endswith(" yes")
    # A learned error above the init is worse, not better.
    worse = PretextSummary.from_report(_report("recon_error", 1.0, [0.875, 0.75], higher=False))
    assert worse.gain_over_init == -0.25 and not worse.beats_init and not worse.learned_task


def test_beats_trivial_in_the_metric_direction():
    # Copying the past frame (0.25) beats a learned error of 0.5: the method did not learn.
    s = PretextSummary.from_report(
        _report("recon_error", 0.5, [1.0, 1.0], {"copy_past": 0.25, "patch_mean": 1.0}, False)
    )
    assert s.beats_init and not s.beats_trivial and not s.learned_task
    assert s.cell().endswith(" no")
    # Equal to chance is not better than chance.
    tie = PretextSummary.from_report(_report("retrieval_top1", 0.5, [0.0], {"chance": 0.5}))
    assert tie.beats_init and not tie.beats_trivial and tie.cell().endswith(" no")
    # No trivial predictor: nothing to beat.
    alone = PretextSummary.from_report(_report("retrieval_top1", 0.5, [0.0]))
    assert alone.beats_trivial and alone.learned_task
    assert alone.cell() == "0.500 (init 0.000) yes"


def test_without_inits_there_is_no_verdict_over_init():
    s = PretextSummary.from_report(_report("retrieval_top1", 0.9, [], {"chance": 0.1}))
    assert s.inits == [] and s.seed_spread == 0.0 and s.gain_over_init is None
    assert not s.beats_init and not s.learned_task
    assert s.cell() == "0.900 (init -; chance 0.100) no"


def test_empty_or_scoreless_report_is_none():
    assert PretextSummary.from_report({}) is None
    assert PretextSummary.from_report({"metric": "iou", "learned": {}}) is None
    assert PretextSummary.from_report({"metric": "iou", "learned": {"peak_in_box": 0.5}}) is None
    assert PretextSummary.from_report({"metric": "", "learned": {"": 0.5}}) is None
