"""The training loop's logging window: per-step loss scalars kept on the device between flushes.

Reading a loss as a Python float forces a device sync; the loop therefore keeps each step's
scalars as tensors and reads the whole window at once every ``log_every`` steps (and before each
checkpoint), averaged over the ranks under torch.distributed.
"""

from __future__ import annotations

import math
import time

import torch

from correlearn.train import distributed as D


class LogWindow:
    """The named scalars of the steps since the last flush.

    Attributes:
        entries: ``(step, {name: 0-d tensor})`` in step order.
    """

    def __init__(self) -> None:
        self.entries: list[tuple[int, dict[str, torch.Tensor]]] = []
        self._t0 = time.monotonic()

    def __bool__(self) -> bool:
        return bool(self.entries)

    def add(self, step: int, record: dict[str, torch.Tensor]) -> None:
        """Append the scalars of 0-based step ``step``."""
        self.entries.append((step, record))

    def flush(
        self,
        history: list[tuple[int, float]],
        last_losses: dict[str, float],
        imgs_per_step: int,
        where: str,
    ) -> tuple[dict[str, float], float]:
        """Read the window (one device sync), extend the run's records and start a new window.

        Args:
            history: the run's ``(step, loss)`` list, extended in place.
            last_losses: replaced in place by the named values of the window's last step.
            imgs_per_step: images of one step over all ranks (for ``img_per_s``).
            where: the run's directory, named in the error.

        Returns:
            The window mean of every name of the last step, and the images per second.

        Raises:
            FloatingPointError: a step's loss is NaN or infinite.
        """
        flat = [(i, k, v) for i, (_, rec) in enumerate(self.entries) for k, v in rec.items()]
        vals = D.all_reduce_mean(torch.stack([v for _, _, v in flat]))
        rows: list[dict[str, float]] = [{} for _ in self.entries]
        for (i, k, _), x in zip(flat, vals.tolist(), strict=True):  # one device sync per window
            rows[i][k] = x
        for (s, _), row in zip(self.entries, rows, strict=True):
            if not math.isfinite(row["loss"]):
                raise FloatingPointError(f"loss is {row['loss']} at step {s} ({where})")
            history.append((s, row["loss"]))
        last_losses.clear()
        last_losses.update(rows[-1])
        now = time.monotonic()
        metrics = {
            k: sum(r[k] for r in rows if k in r) / sum(k in r for r in rows) for k in rows[-1]
        }
        img_per_s = len(self.entries) * imgs_per_step / max(now - self._t0, 1e-9)
        self.entries.clear()
        self._t0 = now
        return metrics, img_per_s
