"""The report's HTML document: header, navigation and sections of one flow run, and its files.

:func:`render_report` is the text; :func:`write_report` writes it atomically;
:func:`publish_report` writes ``<flow>-<timestamp>.html`` and its ``latest-<flow>.html`` copy.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

from correlearn.records import FlowRun
from correlearn.report.jf import jf_section
from correlearn.report.markup import esc
from correlearn.report.sections import (
    StageRow,
    demo_section,
    loss_section,
    pictures_section,
    stage_rows,
    stages_section,
)

CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1d2330;
background:#f6f7f9}
header{background:#1f3a5f;color:#fff;padding:18px 28px}
header h1{margin:0 0 6px;font-size:22px}
header dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px;margin:0}
header dt{opacity:.7}header dd{margin:0}
header a{color:#cfe3ff}header h1 code{font-size:inherit;background:rgba(255,255,255,.12);padding:0 6px;border-radius:4px}
nav{padding:8px 28px;background:#e6ebf2;position:sticky;top:0}
nav a{margin-right:16px;color:#1f3a5f;text-decoration:none;font-weight:600}
section{background:#fff;margin:16px 28px;padding:14px 20px;border-radius:8px;
box-shadow:0 1px 3px rgba(0,0,0,.08)}
h2{margin:4px 0 12px;font-size:18px;color:#1f3a5f}h3{font-size:15px;margin:14px 0 6px}
table{border-collapse:collapse;font-variant-numeric:tabular-nums}
th,td{padding:4px 10px;border-bottom:1px solid #e3e6eb;text-align:left}
th{background:#f0f3f7}td.num{text-align:right}
tr.hit td{color:#5d6675}
.badge{display:inline-block;padding:0 6px;border-radius:4px;font-size:12px}
.badge.hit{background:#e7f0e1;color:#2f6b1f}.badge.run{background:#fdebd3;color:#8a4b00}
.grid{display:flex;flex-wrap:wrap;gap:14px}
figure{margin:0;max-width:100%}figure img{max-width:100%;border:1px solid #e3e6eb;border-radius:4px}
figcaption{font-size:12px;color:#5d6675}
code{font-size:12px}.muted{color:#7a8291}
"""


def _header(run: FlowRun, rows: list[StageRow], meta: dict[str, Any]) -> str:
    """The ``summary`` header: flow, status, config, stage and cache-hit counts, MLflow run."""
    hits = sum(row.run.cache_hit for row in rows)
    computed = sum((row.manifest.get("seconds") or 0) for row in rows if not row.run.cache_hit)
    items = [
        ("status", meta.get("status", "completed")),
        ("generated", time.strftime("%Y-%m-%d %H:%M:%S")),
        ("config", meta.get("config")),
        ("overrides", " ".join(meta.get("overrides") or []) or None),
        ("stages", f"{len(rows)} ({hits} cache hits, {computed:.1f} s computed)"),
        ("workspace", meta.get("home")),
    ]
    dl = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in items if v is not None)
    if meta.get("mlflow_url"):
        dl += (
            f'<dt>MLflow run</dt><dd><a href="{esc(meta["mlflow_url"])}">'
            f"{esc(meta.get('mlflow_run_id', meta['mlflow_url']))}</a></dd>"
        )
    return f'<header id="summary"><h1>correlearn: flow <code>{esc(run.flow)}</code></h1><dl>{dl}</dl></header>'


def render_report(run: FlowRun, meta: dict[str, Any] | None = None) -> str:
    """The report's HTML text (see :mod:`correlearn.report`).

    Args:
        run: the flow run; for a flow of flows (``demo``) its ``flows`` give the demo table and
            one J&F table per method flow.
        meta: optional header fields: ``status``, ``config``, ``overrides``, ``mlflow_run_id``,
            ``mlflow_url``, ``home``.
    """
    meta = dict(meta or {})
    rows = stage_rows(run.stages)
    groups = run.flows or [run]
    demo = demo_section(run)
    nav = [("stages", "Stages"), ("jf", "J&amp;F"), ("loss-curves", "Loss curves")]
    nav.append(("pictures", "Pictures"))
    if demo:
        nav.insert(0, ("demo-table", "Demo table"))
    flow = esc(run.flow)
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>correlearn report: {flow}</title><style>{CSS}</style></head><body>"
        + _header(run, rows, meta)
        + "<nav>"
        + "".join(f'<a href="#{i}">{t}</a>' for i, t in nav)
        + "</nav>"
        + demo
        + stages_section(rows)
        + jf_section(groups)
        + loss_section(rows, groups)
        + pictures_section(rows)
        + '<footer class="muted" style="margin:8px 28px 20px">correlearn run report</footer>'
        + "</body></html>\n"
    )


def write_report(run: FlowRun, path: str | Path, meta: dict[str, Any] | None = None) -> Path:
    """Write the self-contained HTML report of a flow run to ``path`` (folders are created).

    Args:
        run: the flow run.
        path: the HTML file to write; it appears whole or not at all (written, then renamed).
        meta: optional header fields (see :func:`render_report`).

    Returns:
        ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(render_report(run, meta), encoding="utf-8")
    tmp.replace(path)
    return path


def publish_report(
    run: FlowRun, reports_dir: str | Path, meta: dict[str, Any] | None = None
) -> Path:
    """Write ``<reports_dir>/<flow>-<timestamp>.html`` and copy it to ``latest-<flow>.html``.

    Returns:
        The timestamped file.
    """
    reports_dir = Path(reports_dir)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = write_report(run, reports_dir / f"{run.flow}-{stamp}.html", meta)
    latest = reports_dir / f"latest-{run.flow}.html"
    tmp = latest.with_name(f".{latest.name}.tmp")
    shutil.copyfile(path, tmp)
    tmp.replace(latest)
    return path
