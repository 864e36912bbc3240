"""The demo's closing tables, read from the method flows' evaluation records.

A method flow's result holds ``evaluations``: one record per trained method (written by
``flows/evaluation.py``) with the stage results of its label-propagation runs: the curve's points
(``points``: steps + result, the last one the final checkpoint), the baselines (``baselines``:
``random-s<seed>`` and ``bn-init``) and the k-NN probes. Everything shown is read from the
artifacts those results name (``metrics.json``, ``manifest.json``), so the tables are the same for
cache hits and fresh runs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def _read(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def lp_metric(result: dict[str, Any] | None, key: str) -> float | None:
    """``metrics.json[key]`` of a stage result (``{"path": ...}``), or None when absent."""
    if not result or not result.get("path"):
        return None
    value = _read(Path(result["path"]) / "metrics.json").get(key)
    return float(value) if isinstance(value, int | float) else None


def _checkpoint_meta(lp_result: dict[str, Any] | None) -> dict[str, Any]:
    """The manifest metadata of the checkpoint an evaluation result evaluated."""
    if not lp_result:
        return {}
    path = Path(lp_result["path"])
    ckpt = _read(path / "manifest.json").get("inputs", {}).get("checkpoint", {})
    return _read(path.parents[1] / ckpt.get("stage", "?") / ckpt.get("key", "?") / "manifest.json")


def method_row(record: dict[str, Any], flow: str | None = None) -> dict[str, Any]:
    """One table row of an evaluation record: the final checkpoint against its baselines.

    ``seed_spread`` is max - min J&F over the random-init seeds; ``gain`` is the checkpoint's J&F
    minus the best baseline (any seed, or the BN-calibrated init).
    """
    final = record["points"][-1]["lp"] if record.get("points") else None
    meta = _checkpoint_meta(final).get("metadata", {})
    randoms = [
        lp_metric(r, "JF_mean") for n, r in record.get("baselines", {}).items() if n != "bn-init"
    ]
    randoms = [v for v in randoms if v is not None]
    bn = lp_metric(record.get("baselines", {}).get("bn-init"), "JF_mean")
    jf = lp_metric(final, "JF_mean")
    baselines = randoms + ([bn] if bn is not None else [])
    return {
        "flow": flow,
        "checkpoint": record["name"],
        "preset": record.get("preset"),
        "steps": meta.get("steps"),
        "train_minutes": meta.get("minutes"),
        "JF_mean": jf,
        "J_mean": lp_metric(final, "J_mean"),
        "F_mean": lp_metric(final, "F_mean"),
        "random_JF": randoms,
        "seed_spread": max(randoms) - min(randoms) if len(randoms) > 1 else None,
        "bn_init_JF": bn,
        "gain": jf - max(baselines) if jf is not None and baselines else None,
        "knn_top1": lp_metric(record.get("knn"), "top1"),
        "knn_random_top1": lp_metric(record.get("knn_random"), "top1"),
        "curve": [(p["steps"], lp_metric(p["lp"], "JF_mean")) for p in record.get("points", [])],
    }


def method_rows(flow_result: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows of every evaluation record of one flow result."""
    return [method_row(r, flow_result.get("flow")) for r in flow_result.get("evaluations") or []]


def _fmt(v: Any, spec: str = ".3f") -> str:
    return "-" if v is None else format(v, spec) if isinstance(v, float) else str(v)


def _signed(v: float | None) -> str:
    return "-" if v is None else f"{v:+.3f}"


def demo_table(flow_results: list[dict[str, Any]]) -> str:
    """Markdown: per method, held-out J&F against the random inits and the BN-calibrated init.

    Only step-budgeted results appear (no wall-clock minutes), so two runs of the same config on
    machines of the same kind print the same table.
    """
    lines = [
        "| flow | checkpoint | steps | J&F | J | F | random init J&F (seeds) | seed spread "
        "| BN-calibrated init | gain vs best baseline | k-NN top-1 (random) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for fr in flow_results:
        for r in method_rows(fr):
            rand = " / ".join(_fmt(v) for v in r["random_JF"]) or "-"
            knn = f"{_fmt(r['knn_top1'], '.1f')} ({_fmt(r['knn_random_top1'], '.1f')})"
            lines.append(
                f"| {r['flow']} | {r['checkpoint']} | {_fmt(r['steps'])} | {_fmt(r['JF_mean'])} "
                f"| {_fmt(r['J_mean'])} | {_fmt(r['F_mean'])} | {rand} | {_fmt(r['seed_spread'])} "
                f"| {_fmt(r['bn_init_JF'])} | {_signed(r['gain'])} | {knn} |"
            )
    return "\n".join(lines)


def curve_table(flow_results: list[dict[str, Any]]) -> str:
    """Markdown: the J&F-vs-steps points of every method (held-out label propagation)."""
    lines = ["| checkpoint | J&F at steps |", "|---|---|"]
    for fr in flow_results:
        for r in method_rows(fr):
            points = ", ".join(f"{s}: {_fmt(v)}" for s, v in r["curve"])
            lines.append(f"| {r['checkpoint']} | {points} |")
    return "\n".join(lines)
