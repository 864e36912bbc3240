"""A flow run's report: one self-contained HTML file (inline CSS, pictures as base64 PNG).

Sections (element ids, which ``bin/check_report.py`` and the tests look for):

- ``summary``: flow, status, config, MLflow run, stage and cache-hit counts;
- ``demo-table`` (demo flow only): :func:`correlearn.summary.demo_table`;
- ``stages``: label, stage, cache hit, seconds (the manifest's, i.e. when it was computed), key;
- ``jf``: DAVIS J&F per sequence of every ``eval_label_propagation[<name>]`` result next to the
  ``[random]`` baseline, as a table and a bar chart;
- ``loss-curves``: the held-out J&F-vs-steps curve of each evaluated method (its baselines as
  lines) and ``pictures/loss_curve.png`` of the training artifacts;
- ``pictures``: the other PNGs listed in each manifest's ``pictures``.

Everything is read from the artifacts the flow result names, so a report of cache hits is the same as
one of fresh runs. Large pictures are downscaled and palette-quantised to keep the file small.
"""

from __future__ import annotations

import base64
import html
import io
import json
import shutil
import time
from pathlib import Path
from typing import Any

LOSS_CURVE = "pictures/loss_curve.png"
LP_PREFIX = "eval_label_propagation["
MAX_WIDTH = 960  # pixels: wider pictures are downscaled
SMALL_PNG = 200_000  # bytes: smaller PNGs are embedded untouched

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


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def _esc(v: Any) -> str:
    return html.escape("" if v is None else str(v))


def png_data_uri(path: str | Path, max_width: int = MAX_WIDTH) -> str | None:
    """A ``data:image/png;base64,...`` URI of an image file (downscaled when large); None if unreadable."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError:
        return None
    try:
        from PIL import Image

        with Image.open(io.BytesIO(raw)) as im:
            if im.format == "PNG" and len(raw) <= SMALL_PNG and im.width <= max_width:
                data = raw
            else:
                img = im.convert("RGB")
                if img.width > max_width:
                    img = img.resize(
                        (max_width, max(1, round(img.height * max_width / img.width))),
                        Image.Resampling.LANCZOS,
                    )
                buf = io.BytesIO()
                img.quantize(256).save(buf, "PNG")
                data = buf.getvalue()
    except Exception:  # noqa: BLE001 - a picture that PIL cannot read is left out, not fatal
        return None
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def _figure(uri: str | None, caption: str) -> str:
    if uri is None:
        return f'<figure><p class="muted">{_esc(caption)}: unreadable</p></figure>'
    return f'<figure><img src="{uri}" alt="{_esc(caption)}"><figcaption>{_esc(caption)}</figcaption></figure>'


def _stage_rows(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for r in results:
        m = _read_json(Path(r.get("path", "")) / "manifest.json")
        rows.append({**r, "manifest": m})
    return rows


def _stages_section(rows: list[dict[str, Any]]) -> str:
    body = []
    for r in rows:
        m = r["manifest"]
        hit = bool(r.get("cache_hit"))
        badge = (
            '<span class="badge hit">cache hit</span>'
            if hit
            else (
                '<span class="badge run">'
                + ("forced" if r.get("forced") else "computed")
                + "</span>"
            )
        )
        secs = m.get("seconds")
        run_id = m.get("mlflow_run_id") or ""
        body.append(
            f'<tr class="{"hit" if hit else "run"}"><td>{_esc(r.get("label", r.get("stage")))}</td>'
            f"<td>{_esc(r.get('stage'))}</td><td>{badge}</td>"
            f'<td class="num">{"-" if secs is None else f"{secs:.1f}"}</td>'
            f'<td><code title="{_esc(r.get("path"))}">{_esc(r.get("key"))}</code></td>'
            f"<td><code>{_esc(run_id[:12])}</code></td></tr>"
        )
    if not body:
        return '<section id="stages"><h2>Stages</h2><p class="muted">no stages ran</p></section>'
    return (
        '<section id="stages"><h2>Stages</h2><table><thead><tr><th>label</th><th>stage</th>'
        "<th>cache</th><th>seconds</th><th>artifact key</th><th>MLflow run</th></tr></thead>"
        "<tbody>" + "".join(body) + "</tbody></table>"
        '<p class="muted">seconds: compute time recorded in the manifest (for a cache hit, of the '
        "run that made the artifact).</p></section>"
    )


def lp_results(results: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """``name -> metrics.json`` of every ``eval_label_propagation[<name>]`` result (first wins)."""
    out: dict[str, dict[str, Any]] = {}
    for r in results:
        label = r.get("label") or ""
        if label.startswith(LP_PREFIX) and label.endswith("]"):
            name = label[len(LP_PREFIX) : -1]
            if name not in out:
                out[name] = _read_json(Path(r.get("path", "")) / "metrics.json")
    return out


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
        color = "#9aa3b1" if n == "random" else None
        ax.bar(x + (i - (len(names) - 1) / 2) * width, vals, width, label=n, color=color)
    ax.set_xticks(x, groups, rotation=20, ha="right", fontsize=8)
    ax.set_ylabel("J&F")
    ax.set_ylim(0, 1)
    ax.set_title(title, fontsize=10)
    ax.legend(frameon=False, fontsize=8, ncols=min(len(names), 4))
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _fmt(v: Any) -> str:
    return f"{v:.3f}" if isinstance(v, int | float) else "-"


def _jf_group(flow: str, results: list[dict[str, Any]]) -> str:
    per_name = lp_results(results)
    if not per_name:
        return ""
    names = list(per_name)
    # The baselines last, next to what they are the baselines of.
    base = [n for n in names if n.startswith("random") or n.endswith("bn-init")]
    names = [n for n in names if n not in base] + base
    seqs = sorted({s for m in per_name.values() for s in m.get("per_sequence", {})})
    head = "".join(f"<th>{_esc(n)}</th>" for n in names)
    rows = []
    for s in seqs:
        cells = "".join(
            f'<td class="num">{_fmt(per_name[n].get("per_sequence", {}).get(s, {}).get("JF_mean"))}</td>'
            for n in names
        )
        rows.append(f"<tr><td>{_esc(s)}</td>{cells}</tr>")
    for metric, label in (("JF_mean", "J&amp;F mean"), ("J_mean", "J mean"), ("F_mean", "F mean")):
        cells = "".join(
            f'<td class="num"><b>{_fmt(per_name[n].get(metric))}</b></td>' for n in names
        )
        rows.append(f"<tr><td><b>{label}</b></td>{cells}</tr>")
    chart = jf_chart({n: per_name[n] for n in names}, f"{flow}: J&F per sequence")
    return (
        f'<h3>{_esc(flow)}</h3><div class="grid"><table><thead><tr><th>sequence</th>{head}</tr>'
        f"</thead><tbody>{''.join(rows)}</tbody></table>"
        + (_figure(chart, f"{flow}: J&F per sequence") if chart else "")
        + "</div>"
    )


def _jf_section(groups: list[dict[str, Any]]) -> str:
    parts = [_jf_group(g.get("flow", "?"), g.get("stages", [])) for g in groups]
    body = "".join(parts) or '<p class="muted">no label-propagation evaluation in this run</p>'
    return (
        '<section id="jf"><h2>DAVIS label propagation: J&amp;F per sequence</h2>'
        '<p class="muted">each checkpoint against <code>[random]</code>, a random init of the same '
        "backbone (frozen features, same protocol).</p>" + body + "</section>"
    )


def _unique(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen, out = set(), []
    for r in rows:
        k = (r.get("stage"), r.get("key"))
        if k not in seen:
            seen.add(k)
            out.append(r)
    return out


def _jf_curve_figures(groups: list[dict[str, Any]]) -> list[str]:
    """One J&F-vs-steps figure per evaluation record, the baselines as horizontal lines."""
    import tempfile

    from correlearn.summary import method_row
    from correlearn.viz.curves import plot_jf_curve

    figs = []
    for g in groups:
        for record in g.get("evaluations") or []:
            row = method_row(record, g.get("flow"))
            points = [(s, v) for s, v in row["curve"] if s is not None and v is not None]
            if not points:
                continue
            lines = {
                f"random init, seed {i}": v for i, v in enumerate(row["random_JF"]) if v is not None
            }
            if row["bn_init_JF"] is not None:
                lines["BN-calibrated init"] = row["bn_init_JF"]
            with tempfile.TemporaryDirectory() as tmp:
                path = plot_jf_curve(points, lines, Path(tmp) / "jf.png", f"{row['checkpoint']}")
                uri = png_data_uri(path)
            figs.append(_figure(uri, f"{row['checkpoint']}: held-out J&F vs steps"))
    return figs


def _loss_section(rows: list[dict[str, Any]], groups: list[dict[str, Any]]) -> str:
    figs = _jf_curve_figures(groups) + [
        _figure(png_data_uri(Path(r["path"]) / LOSS_CURVE), f"{r.get('label')} ({r.get('key')})")
        for r in _unique(rows)
        if LOSS_CURVE in (r["manifest"].get("pictures") or [])
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


def _pictures_section(rows: list[dict[str, Any]]) -> str:
    parts = []
    for r in _unique(rows):
        pics = [
            p
            for p in r["manifest"].get("pictures") or []
            if p != LOSS_CURVE and p.lower().endswith(".png")
        ]
        if not pics:
            continue
        figs = "".join(_figure(png_data_uri(Path(r["path"]) / p), Path(p).stem) for p in pics)
        parts.append(
            f'<h3>{_esc(r.get("label"))} <code class="muted">{_esc(r.get("key"))}</code></h3>'
            f'<div class="grid">{figs}</div>'
        )
    body = "".join(parts) or '<p class="muted">no pictures in this run</p>'
    return f'<section id="pictures"><h2>Pictures</h2>{body}</section>'


def markdown_table_html(md: str) -> str:
    """A markdown pipe table (as :func:`correlearn.summary.demo_table` writes) as an HTML table."""
    lines = [ln.strip() for ln in md.strip().splitlines() if ln.strip().startswith("|")]
    cells = [[c.strip() for c in ln.strip("|").split("|")] for ln in lines]
    cells = [c for c in cells if not all(set(x) <= {"-", ":"} for x in c)]
    if not cells:
        return ""
    head = "".join(f"<th>{_esc(c)}</th>" for c in cells[0])
    body = "".join(
        "<tr>" + "".join(f"<td>{_esc(c)}</td>" for c in row) + "</tr>" for row in cells[1:]
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _demo_section(flow_result: dict[str, Any]) -> str:
    table = flow_result.get("table")
    if flow_result.get("flows"):
        from correlearn.summary import demo_table

        table = demo_table(flow_result["flows"])
    if not table:
        return ""
    return (
        '<section id="demo-table"><h2>Demo: every method against its random init</h2>'
        + markdown_table_html(table)
        + "</section>"
    )


def _summary(flow_result: dict[str, Any], rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    flow = flow_result.get("flow", "?")
    hits = sum(bool(r.get("cache_hit")) for r in rows)
    computed = sum((r["manifest"].get("seconds") or 0) for r in rows if not r.get("cache_hit"))
    items = [
        ("status", meta.get("status", "completed")),
        ("generated", time.strftime("%Y-%m-%d %H:%M:%S")),
        ("config", meta.get("config")),
        ("overrides", " ".join(meta.get("overrides") or []) or None),
        ("stages", f"{len(rows)} ({hits} cache hits, {computed:.1f} s computed)"),
        ("workspace", meta.get("home")),
    ]
    dl = "".join(f"<dt>{_esc(k)}</dt><dd>{_esc(v)}</dd>" for k, v in items if v is not None)
    if meta.get("mlflow_url"):
        dl += (
            f'<dt>MLflow run</dt><dd><a href="{_esc(meta["mlflow_url"])}">'
            f"{_esc(meta.get('mlflow_run_id', meta['mlflow_url']))}</a></dd>"
        )
    return f'<header id="summary"><h1>correlearn: flow <code>{_esc(flow)}</code></h1><dl>{dl}</dl></header>'


def render_report(flow_result: dict[str, Any], meta: dict[str, Any] | None = None) -> str:
    """The report's HTML text (see the module docstring); ``meta`` adds header fields."""
    meta = dict(meta or {})
    rows = _stage_rows(flow_result.get("stages") or [])
    groups = flow_result.get("flows") or [flow_result]
    demo = _demo_section(flow_result)
    nav = [("stages", "Stages"), ("jf", "J&amp;F"), ("loss-curves", "Loss curves")]
    nav.append(("pictures", "Pictures"))
    if demo:
        nav.insert(0, ("demo-table", "Demo table"))
    flow = _esc(flow_result.get("flow", "?"))
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>correlearn report: {flow}</title><style>{CSS}</style></head><body>"
        + _summary(flow_result, rows, meta)
        + "<nav>"
        + "".join(f'<a href="#{i}">{t}</a>' for i, t in nav)
        + "</nav>"
        + demo
        + _stages_section(rows)
        + _jf_section(groups)
        + _loss_section(rows, groups)
        + _pictures_section(rows)
        + '<footer class="muted" style="margin:8px 28px 20px">correlearn run report</footer>'
        + "</body></html>\n"
    )


def write_report(
    flow_result: dict[str, Any], path: str | Path, meta: dict[str, Any] | None = None
) -> Path:
    """Write the self-contained HTML report of a flow result (``{"flow", "stages", ...}``).

    Args:
        flow_result: a flow's summary: ``stages`` is a list of stage results (``label``, ``stage``,
            ``key``, ``path``, ``cache_hit``); the demo flow adds ``table`` (markdown) or ``flows``
            (the method flows' results, for the demo table and J&F per flow).
        path: the HTML file to write (folders are created).
        meta: optional header fields: ``status``, ``config``, ``overrides``, ``mlflow_run_id``,
            ``mlflow_url``, ``home``.

    Returns:
        ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(render_report(flow_result, meta), encoding="utf-8")
    tmp.replace(path)
    return path


def publish_report(
    flow_result: dict[str, Any], reports_dir: str | Path, meta: dict[str, Any] | None = None
) -> Path:
    """Write ``<reports_dir>/<flow>-<timestamp>.html`` and copy it to ``latest-<flow>.html``."""
    reports_dir = Path(reports_dir)
    flow = str(flow_result.get("flow", "flow"))
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = write_report(flow_result, reports_dir / f"{flow}-{stamp}.html", meta)
    latest = reports_dir / f"latest-{flow}.html"
    tmp = latest.with_name(f".{latest.name}.tmp")
    shutil.copyfile(path, tmp)
    tmp.replace(latest)
    return path
