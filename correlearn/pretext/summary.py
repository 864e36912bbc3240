"""The verdict of a held-out pretext report: did the method learn its own task?

A training stage's manifest holds the report of :mod:`correlearn.pretrain.heldout` (learned score,
the untrained init at several seeds, trivial predictors). :class:`PretextSummary` reads it and
says whether the learned score beats the best init by more than the inits' seed spread and beats
every trivial predictor, in the metric's own direction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class PretextSummary:
    """One method's held-out pretext result.

    Attributes:
        metric: the metric's name (``retrieval_top1``).
        higher_is_better: its direction (False for reconstruction errors).
        learned: the trained checkpoint's score.
        inits: the untrained init's score at each seed, in seed order.
        trivial: trivial predictor -> its score.
        curve: ``(step, score)`` points of the training call(s) that made the checkpoint.
    """

    metric: str
    higher_is_better: bool
    learned: float
    inits: list[float]
    trivial: dict[str, float] = field(default_factory=dict)
    curve: list[tuple[int, float]] = field(default_factory=list)

    @classmethod
    def from_report(cls, report: dict[str, Any]) -> PretextSummary | None:
        """From a manifest's ``pretext`` dict; None when it is empty or has no score."""
        name = report.get("metric")
        if not name or name not in (report.get("learned") or {}):
            return None
        return cls(
            metric=name,
            higher_is_better=bool(report.get("higher_is_better", True)),
            learned=float(report["learned"][name]),
            inits=[float(s[name]) for s in (report.get("init") or {}).values() if name in s],
            trivial={
                k: float(s[name]) for k, s in (report.get("trivial") or {}).items() if name in s
            },
            curve=[(int(p["step"]), float(p[name])) for p in report.get("curve") or []],
        )

    def _gain(self, other: float) -> float:
        return self.learned - other if self.higher_is_better else other - self.learned

    @property
    def seed_spread(self) -> float:
        """The spread (max - min) of the inits' scores (0 with one seed)."""
        return max(self.inits) - min(self.inits) if self.inits else 0.0

    @property
    def gain_over_init(self) -> float | None:
        """Improvement over the best init, in the metric's direction (positive: better)."""
        if not self.inits:
            return None
        best = max(self.inits) if self.higher_is_better else min(self.inits)
        return self._gain(best)

    @property
    def beats_init(self) -> bool:
        """The gain over the best init exceeds the inits' seed spread."""
        gain = self.gain_over_init
        return gain is not None and gain > self.seed_spread

    @property
    def beats_trivial(self) -> bool:
        """Better than every trivial predictor (True when there is none)."""
        return all(self._gain(v) > 0 for v in self.trivial.values())

    @property
    def learned_task(self) -> bool:
        """Both: beyond the init's noise floor and above every trivial predictor."""
        return self.beats_init and self.beats_trivial

    def cell(self) -> str:
        """``0.412 (init 0.101 / 0.120; chance 0.016) yes`` for a Markdown table."""
        inits = " / ".join(f"{v:.3f}" for v in self.inits) or "-"
        trivial = "; ".join(f"{k} {v:.3f}" for k, v in self.trivial.items())
        verdict = "yes" if self.learned_task else "no"
        return f"{self.learned:.3f} (init {inits}{'; ' + trivial if trivial else ''}) {verdict}"
