"""The demo's closing tables: per trained method, held-out J&F against its baselines.

They read the :class:`~correlearn.records.MethodEvaluation` records of the method flows' runs
(:class:`~correlearn.records.FlowRun`): the curve's points (steps and label-propagation run, the
last one the final checkpoint), the baselines (``random-s<seed>`` and ``bn-init``) and the k-NN
probes. Every number is read from the ``metrics.json`` of the artifact a run names, so the tables
are the same for cache hits and fresh runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from correlearn.pretext.summary import PretextSummary
from correlearn.records import FlowRun, MethodEvaluation, StageRun

BN_INIT = "bn-init"  # the baseline name of the BN-calibrated init in MethodEvaluation.baselines


def lp_metric(run: StageRun | None, key: str) -> float | None:
    """``metrics.json[key]`` of a stage run, or None when there is no run or no such number."""
    return run.metric(key) if run is not None else None


@dataclass(frozen=True)
class MethodRow:
    """One table row: a method's final checkpoint against its baselines.

    Attributes:
        flow: the flow that trained it.
        checkpoint: the checkpoint's name in tables (``vfs``).
        preset: the label-propagation preset the final checkpoint resolved to.
        steps: the final checkpoint's training steps.
        jf, j, f: its held-out J&F, J and F means.
        random_jf: J&F of each random-init seed that has a number, in seed order.
        seed_spread: max - min of ``random_jf`` (None with fewer than two seeds).
        bn_init_jf: J&F of the BN-calibrated init.
        gain: ``jf`` minus the best baseline (any seed, or the BN-calibrated init).
        knn_top1, knn_random_top1: k-NN top-1 of the checkpoint and of the seed-0 random init.
        curve: (steps, J&F) of every point of the curve, ascending in steps.
        pretext: the final checkpoint's held-out pretext result (None without ``val.dataset``).
    """

    flow: str | None
    checkpoint: str
    preset: str | None
    steps: int | None
    jf: float | None
    j: float | None
    f: float | None
    random_jf: list[float] = field(default_factory=list)
    seed_spread: float | None = None
    bn_init_jf: float | None = None
    gain: float | None = None
    knn_top1: float | None = None
    knn_random_top1: float | None = None
    curve: list[tuple[int | None, float | None]] = field(default_factory=list)
    pretext: PretextSummary | None = None


def method_row(evaluation: MethodEvaluation, flow: str | None = None) -> MethodRow:
    """The table row of one method's evaluation in flow ``flow``."""
    final = evaluation.final
    randoms = [
        lp_metric(run, "JF_mean") for name, run in evaluation.baselines.items() if name != BN_INIT
    ]
    randoms = [v for v in randoms if v is not None]
    bn = lp_metric(evaluation.baselines.get(BN_INIT), "JF_mean")
    jf = lp_metric(final, "JF_mean")
    baselines = randoms + ([bn] if bn is not None else [])
    return MethodRow(
        flow=flow,
        checkpoint=evaluation.name,
        preset=evaluation.preset,
        # A point's steps are its checkpoint's ``metadata.steps``; a checkpoint that was never
        # evaluated (the flow stopped) has no row numbers, its steps included.
        steps=evaluation.points[-1].steps if final is not None else None,
        jf=jf,
        j=lp_metric(final, "J_mean"),
        f=lp_metric(final, "F_mean"),
        random_jf=randoms,
        seed_spread=max(randoms) - min(randoms) if len(randoms) > 1 else None,
        bn_init_jf=bn,
        gain=jf - max(baselines) if jf is not None and baselines else None,
        knn_top1=lp_metric(evaluation.knn, "top1"),
        knn_random_top1=lp_metric(evaluation.knn_random, "top1"),
        curve=[(p.steps, lp_metric(p.lp, "JF_mean")) for p in evaluation.points],
        pretext=PretextSummary.from_report(evaluation.points[-1].pretext())
        if evaluation.points
        else None,
    )


def method_rows(run: FlowRun) -> list[MethodRow]:
    """The rows of every method evaluation of one flow run."""
    return [method_row(e, run.flow) for e in run.evaluations]


def _fmt(v: Any, spec: str = ".3f") -> str:
    return "-" if v is None else format(v, spec) if isinstance(v, float) else str(v)


def _signed(v: float | None) -> str:
    return "-" if v is None else f"{v:+.3f}"


def demo_table(runs: list[FlowRun]) -> str:
    """Markdown: per method, held-out J&F against the random inits and the BN-calibrated init.

    Only step-budgeted results appear (no wall-clock minutes), so two runs of the same config on
    machines of the same kind print the same table.

    Args:
        runs: the method flows' runs, in table order.
    """
    lines = [
        "| flow | checkpoint | steps | held-out pretext: learned (init seeds; trivial) learned? "
        "| J&F | J | F | random init J&F (seeds) | seed spread "
        "| BN-calibrated init | gain vs best baseline | k-NN top-1 (random) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        for r in method_rows(run):
            rand = " / ".join(_fmt(v) for v in r.random_jf) or "-"
            knn = f"{_fmt(r.knn_top1, '.1f')} ({_fmt(r.knn_random_top1, '.1f')})"
            pretext = f"{r.pretext.metric} {r.pretext.cell()}" if r.pretext else "-"
            lines.append(
                f"| {r.flow} | {r.checkpoint} | {_fmt(r.steps)} | {pretext} | {_fmt(r.jf)} "
                f"| {_fmt(r.j)} | {_fmt(r.f)} | {rand} | {_fmt(r.seed_spread)} "
                f"| {_fmt(r.bn_init_jf)} | {_signed(r.gain)} | {knn} |"
            )
    return "\n".join(lines)


def curve_table(runs: list[FlowRun]) -> str:
    """Markdown: the J&F-vs-steps points of every method (held-out label propagation)."""
    lines = ["| checkpoint | J&F at steps |", "|---|---|"]
    for run in runs:
        for r in method_rows(run):
            points = ", ".join(f"{s}: {_fmt(v)}" for s, v in r.curve)
            lines.append(f"| {r.checkpoint} | {points} |")
    return "\n".join(lines)


def closing_tables(runs: list[FlowRun]) -> str:
    """Markdown: the demo table, then the J&F-vs-steps table where a curve has several points."""
    if not any(len(r.curve) > 1 for run in runs for r in method_rows(run)):
        return demo_table(runs)
    return demo_table(runs) + "\n\nJ&F vs steps (held-out):\n\n" + curve_table(runs)
