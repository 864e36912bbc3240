"""The report's J&F parts: the ``jf`` section and the held-out J&F-vs-steps figures.

``jf``: per flow run, the DAVIS J&F per sequence of every label-propagation call, one column per
evaluated checkpoint (the call's :attr:`~correlearn.records.StageRun.subject`), the baselines of
the run's method evaluations last; as a table and a grouped bar chart. The curve figures (one per
:class:`~correlearn.records.MethodEvaluation`) go to the ``loss-curves`` section.
"""

from __future__ import annotations

import io
import tempfile
from pathlib import Path
from typing import Any

from correlearn.demo_tables import method_row
from correlearn.records import LP_STAGE, FlowRun
from correlearn.report.markup import esc, figure, fmt3, png_data_uri, png_uri


def lp_results(run: FlowRun) -> dict[str, dict[str, Any]]:
    """``subject -> metrics.json`` of every label-propagation call of ``run`` (first call wins)."""
    return {subject: r.metrics() for subject, r in run.evaluations_of(LP_STAGE).items()}


def jf_chart(per_name: dict[str, dict[str, Any]], title: str = "") -> str | None:
    """Grouped bar chart (PNG data URI) of J&F per sequence and mean, one bar per checkpoint."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    names = [n for n, m in per_name.items() if m.get("per_sequence")]
    if not names:
        return None
    seqs = sorted({s for n in names for s in per_name[n]["per_sequence"]})
    groups = seqs + ["mean"]
    fig = Figure(figsize=(max(5.0, 1.1 * len(groups) + 1.5), 3.2), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    width = 0.8 / len(names)
    x = np.arange(len(groups))
    for i, n in enumerate(names):
        per = per_name[n]["per_sequence"]
        vals = [per.get(s, {}).get("JF_mean", np.nan) for s in seqs]
        vals.append(per_name[n].get("JF_mean", np.nan))
        ax.bar(x + (i - (len(names) - 1) / 2) * width, vals, width, label=n)
    ax.set_xticks(x, groups, rotation=20, ha="right", fontsize=8)
    ax.set_ylabel("J&F")
    ax.set_ylim(0, 1)
    ax.set_title(title, fontsize=10)
    ax.legend(frameon=False, fontsize=8, ncols=min(len(names), 4))
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return png_uri(buf.getvalue())


def _baselines_last(run: FlowRun, names: list[str]) -> list[str]:
    """``names`` with the baselines of the run's method evaluations last (next to their method)."""
    base = {
        r.subject for e in run.evaluations for r in e.baselines.values() if r is not None
    } & set(names)
    return [n for n in names if n not in base] + [n for n in names if n in base]


def _jf_group(run: FlowRun) -> str:
    per_name = lp_results(run)
    if not per_name:
        return ""
    names = _baselines_last(run, list(per_name))
    seqs = sorted({s for m in per_name.values() for s in m.get("per_sequence", {})})
    head = "".join(f"<th>{esc(n)}</th>" for n in names)
    rows = []
    for s in seqs:
        cells = "".join(
            f'<td class="num">{fmt3(per_name[n].get("per_sequence", {}).get(s, {}).get("JF_mean"))}</td>'
            for n in names
        )
        rows.append(f"<tr><td>{esc(s)}</td>{cells}</tr>")
    for metric, label in (("JF_mean", "J&amp;F mean"), ("J_mean", "J mean"), ("F_mean", "F mean")):
        cells = "".join(
            f'<td class="num"><b>{fmt3(per_name[n].get(metric))}</b></td>' for n in names
        )
        rows.append(f"<tr><td><b>{label}</b></td>{cells}</tr>")
    chart = jf_chart({n: per_name[n] for n in names}, f"{run.flow}: J&F per sequence")
    return (
        f'<h3>{esc(run.flow)}</h3><div class="grid"><table><thead><tr><th>sequence</th>{head}</tr>'
        f"</thead><tbody>{''.join(rows)}</tbody></table>"
        + (figure(chart, f"{run.flow}: J&F per sequence") if chart else "")
        + "</div>"
    )


def jf_section(groups: list[FlowRun]) -> str:
    """The ``jf`` section: one table and chart per flow run of ``groups``."""
    body = "".join(_jf_group(g) for g in groups)
    body = body or '<p class="muted">no label-propagation evaluation in this run</p>'
    return (
        '<section id="jf"><h2>DAVIS label propagation: J&amp;F per sequence</h2>'
        '<p class="muted">each checkpoint against <code>[random]</code>, a random init of the same '
        "backbone (frozen features, same protocol).</p>" + body + "</section>"
    )


def jf_curve_figures(groups: list[FlowRun]) -> list[str]:
    """One J&F-vs-steps figure per method evaluation, the baselines as horizontal lines."""
    from correlearn.viz.curves import plot_jf_curve

    figs = []
    for g in groups:
        for evaluation in g.evaluations:
            row = method_row(evaluation, g.flow)
            points = [(s, v) for s, v in row.curve if s is not None and v is not None]
            if not points:
                continue
            # Numbered in order among the seeds that have a number (the seeds themselves are not
            # in the row), as the report always labelled them.
            lines = {f"random init, seed {i}": v for i, v in enumerate(row.random_jf)}
            if row.bn_init_jf is not None:
                lines["BN-calibrated init"] = row.bn_init_jf
            with tempfile.TemporaryDirectory() as tmp:
                path = plot_jf_curve(points, lines, Path(tmp) / "jf.png", row.checkpoint)
                uri = png_data_uri(path)
            figs.append(figure(uri, f"{row.checkpoint}: held-out J&F vs steps"))
    return figs
