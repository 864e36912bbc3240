"""The report's sections of stage calls (``stages``, ``loss-curves``, ``pictures``), ``demo-table``.

Each stage call is shown with its artifact's manifest (:class:`StageRow`): the seconds and the
MLflow run are those of the run that made the artifact, so a cache hit shows what it cost once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from correlearn.demo_tables import demo_table
from correlearn.records import LOSS_CURVE, FlowRun, StageRun
from correlearn.report.jf import jf_curve_figures
from correlearn.report.markup import esc, figure, markdown_table_html, png_data_uri


@dataclass(frozen=True)
class StageRow:
    """A stage call and the manifest of the artifact that answered it (empty when unreadable)."""

    run: StageRun
    manifest: dict[str, Any]

    @property
    def pictures(self) -> list[str]:
        """The manifest's pictures (paths relative to the artifact)."""
        return list(self.manifest.get("pictures") or [])


def stage_rows(runs: list[StageRun]) -> list[StageRow]:
    """One row per stage call, in order, with its manifest read once."""
    return [StageRow(r, r.manifest()) for r in runs]


def _unique(rows: list[StageRow]) -> list[StageRow]:
    """The first row of each artifact (a flow may call a stage with the same key twice)."""
    seen, out = set(), []
    for row in rows:
        k = (row.run.stage, row.run.key)
        if k not in seen:
            seen.add(k)
            out.append(row)
    return out


def _stage_tr(row: StageRow) -> str:
    r, secs = row.run, row.manifest.get("seconds")
    if r.cache_hit:
        badge = '<span class="badge hit">cache hit</span>'
    else:
        badge = f'<span class="badge run">{"forced" if r.forced else "computed"}</span>'
    run_id = row.manifest.get("mlflow_run_id") or ""
    return (
        f'<tr class="{"hit" if r.cache_hit else "run"}"><td>{esc(r.name)}</td>'
        f"<td>{esc(r.stage)}</td><td>{badge}</td>"
        f'<td class="num">{"-" if secs is None else f"{secs:.1f}"}</td>'
        f'<td><code title="{esc(r.path)}">{esc(r.key)}</code></td>'
        f"<td><code>{esc(run_id[:12])}</code></td></tr>"
    )


def stages_section(rows: list[StageRow]) -> str:
    """The ``stages`` section: label, stage, cache state, seconds, key and MLflow run per call."""
    if not rows:
        return '<section id="stages"><h2>Stages</h2><p class="muted">no stages ran</p></section>'
    return (
        '<section id="stages"><h2>Stages</h2><table><thead><tr><th>label</th><th>stage</th>'
        "<th>cache</th><th>seconds</th><th>artifact key</th><th>MLflow run</th></tr></thead>"
        "<tbody>" + "".join(_stage_tr(row) for row in rows) + "</tbody></table>"
        '<p class="muted">seconds: compute time recorded in the manifest (for a cache hit, of the '
        "run that made the artifact).</p></section>"
    )


def loss_section(rows: list[StageRow], groups: list[FlowRun]) -> str:
    """The ``loss-curves`` section: the J&F-vs-steps curves, then each training artifact's loss."""
    figs = jf_curve_figures(groups) + [
        figure(png_data_uri(Path(row.run.path) / LOSS_CURVE), f"{row.run.name} ({row.run.key})")
        for row in _unique(rows)
        if LOSS_CURVE in row.pictures
    ]
    body = (
        f'<div class="grid">{"".join(figs)}</div>'
        if figs
        else ('<p class="muted">no training stage in this run</p>')
    )
    return (
        '<section id="loss-curves"><h2>Held-out J&amp;F vs steps, and loss curves</h2>'
        f"{body}</section>"
    )


def pictures_section(rows: list[StageRow]) -> str:
    """The ``pictures`` section: every other PNG the manifests list, per artifact."""
    parts = []
    for row in _unique(rows):
        pics = [p for p in row.pictures if p != LOSS_CURVE and p.lower().endswith(".png")]
        if not pics:
            continue
        folder = Path(row.run.path)
        figs = "".join(figure(png_data_uri(folder / p), Path(p).stem) for p in pics)
        parts.append(
            f'<h3>{esc(row.run.name)} <code class="muted">{esc(row.run.key)}</code></h3>'
            f'<div class="grid">{figs}</div>'
        )
    body = "".join(parts) or '<p class="muted">no pictures in this run</p>'
    return f'<section id="pictures"><h2>Pictures</h2>{body}</section>'


def demo_section(run: FlowRun) -> str:
    """The ``demo-table`` section of a flow of flows (empty for a method flow).

    The table is rebuilt from the method flows' runs when the run has them, else the run's own
    ``table`` is shown.
    """
    table = run.table
    if run.flows:
        table = demo_table(run.flows)
    if not table:
        return ""
    return (
        '<section id="demo-table"><h2>Demo: every method against its random init</h2>'
        + markdown_table_html(table)
        + "</section>"
    )
