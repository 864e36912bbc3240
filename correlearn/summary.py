"""The demo's closing table: per method, J&F of its checkpoint and of a random init, and minutes.

Reads only artifacts (``metrics.json``, ``manifest.json``) named by flow results, so it works on
cache hits as well as fresh runs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def _read(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def method_rows(flow_result: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows ``{method, checkpoint, JF_mean, J_mean, F_mean, knn_top1, train_minutes}`` of one flow.

    A row per ``eval_label_propagation[<name>]`` result; ``knn_top1`` comes from the matching
    ``eval_knn[<name>]``; ``train_minutes`` from the evaluated checkpoint's manifest.
    """
    by_label = {r["label"]: r for r in flow_result.get("stages", [])}
    rows = []
    for label, res in by_label.items():
        if not label.startswith("eval_label_propagation["):
            continue
        name = label[len("eval_label_propagation[") : -1]
        metrics = _read(Path(res["path"]) / "metrics.json")
        manifest = _read(Path(res["path"]) / "manifest.json")
        ckpt = manifest.get("inputs", {}).get("checkpoint", {})
        ckpt_dir = Path(res["path"]).parents[1] / ckpt.get("stage", "?") / ckpt.get("key", "?")
        ckpt_meta = _read(ckpt_dir / "manifest.json").get("metadata", {})
        knn = by_label.get(f"eval_knn[{name}]")
        rows.append(
            {
                "flow": flow_result.get("flow"),
                "checkpoint": name,
                "stage": ckpt.get("stage"),
                "JF_mean": metrics.get("JF_mean"),
                "J_mean": metrics.get("J_mean"),
                "F_mean": metrics.get("F_mean"),
                "knn_top1": _read(Path(knn["path"]) / "metrics.json").get("top1") if knn else None,
                "train_minutes": ckpt_meta.get("minutes"),
                "steps": ckpt_meta.get("steps"),
            }
        )
    return rows


def _fmt(v: Any, spec: str = ".3f") -> str:
    return "-" if v is None else format(v, spec) if isinstance(v, float) else str(v)


def demo_table(flow_results: list[dict[str, Any]]) -> str:
    """Markdown table: method, J&F, random-init J&F (same backbone), k-NN top-1, training minutes."""
    lines = [
        "| flow | checkpoint | J&F | J | F | random-init J&F | k-NN top-1 | train min | steps |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for fr in flow_results:
        rows = method_rows(fr)
        base = next((r for r in rows if r["checkpoint"] == "random"), None)
        for r in rows:
            if r["checkpoint"] == "random":
                continue
            lines.append(
                f"| {r['flow']} | {r['checkpoint']} | {_fmt(r['JF_mean'])} | {_fmt(r['J_mean'])} | "
                f"{_fmt(r['F_mean'])} | {_fmt(base and base['JF_mean'])} | {_fmt(r['knn_top1'])} | "
                f"{_fmt(r['train_minutes'], '.1f')} | {_fmt(r['steps'])} |"
            )
    return "\n".join(lines)
