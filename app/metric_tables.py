"""An evaluation's metrics as ``correlearn eval`` prints them (markdown tables)."""

from __future__ import annotations

from typing import Any


def metrics_lines(metrics: dict[str, Any]) -> list[str]:
    """Markdown lines of an evaluation's ``metrics.json``: J&F tables, tracking, or name: value."""
    if "JF_mean" in metrics:
        keys = ("JF_mean", "J_mean", "F_mean", "J_recall", "F_recall", "J_decay", "F_decay")
        lines = [
            "| " + " | ".join(k.replace("_mean", "").replace("JF", "J&F") for k in keys) + " |"
        ]
        lines.append("|" + "---|" * len(keys))
        lines.append("| " + " | ".join(f"{metrics[k]:.3f}" for k in keys) + " |")
        lines += ["", "| sequence | J&F | J | F |", "|---|---|---|---|"]
        for seq, m in sorted(metrics.get("per_sequence", {}).items()):
            lines.append(f"| {seq} | {m['JF_mean']:.3f} | {m['J_mean']:.3f} | {m['F_mean']:.3f} |")
        return lines
    if "copy_first_box" in metrics:
        return tracking_lines(metrics)
    return [f"{k}: {v:.2f}" for k, v in metrics.items() if isinstance(v, int | float)]


def tracking_lines(metrics: dict[str, Any]) -> list[str]:
    """SiamFC against copying the first box: the OTB precision and success, overall and per sequence."""
    base = metrics["copy_first_box"]
    lines = ["| tracker | precision@20px | success AUC |", "|---|---|---|"]
    lines.append(f"| SiamFC | {metrics['precision']:.1f} | {metrics['success']:.1f} |")
    lines.append(f"| copy the first box | {base['precision']:.1f} | {base['success']:.1f} |")
    lines += ["", "| sequence | precision | success | copy-first precision | copy-first success |"]
    lines.append("|---|---|---|---|---|")
    for seq, m in sorted(metrics["per_sequence"].items()):
        b = base["per_sequence"][seq]
        lines.append(
            f"| {seq} | {m['precision']:.1f} | {m['success']:.1f} | {b['precision']:.1f} "
            f"| {b['success']:.1f} |"
        )
    return lines
