"""The hooks every method gives the training loop: one step's losses, EMA pairs, pictures.

:func:`correlearn.train.loop.fit` trains any :class:`Method`. After each optimiser step it moves the
target of every pair of :meth:`Method.ema_pairs` towards its online network,
``xi <- tau xi + (1 - tau) theta`` (BYOL Sec. 3.1), with ``tau = ema_momentum(step, total_steps)``;
a method without a target network returns no pairs and the loop skips the update.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from correlearn.train.ema import ema_update
from correlearn.train.schedules import ema_tau


class Method(nn.Module):
    """Base class of the methods (BYOL, ORL, CIM, VFS, SiamMAE, CropMAE) and of what ``fit`` trains.

    Subclasses implement :meth:`training_step` and set ``backbone`` (the network that is evaluated
    and exported); a method with an EMA target also overrides :meth:`ema_pairs` and sets
    ``base_tau``.

    Attributes:
        backbone: the online encoder, with ``export_state_dict()``.
        base_tau: the EMA momentum at step 0 (methods with an EMA target only).
    """

    backbone: nn.Module
    base_tau: float
    # The held-out metric of the method's own task (``pretext_metrics``) that tables show first.
    pretext_metric: str = ""
    pretext_higher_is_better: bool = True

    def training_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The losses of one batch.

        Args:
            batch: the method's inputs, tensors already on the model's device.

        Returns:
            Named scalars; ``"loss"`` is back-propagated, the others are logged.
        """
        raise NotImplementedError(f"{type(self).__name__} does not define training_step")

    def ema_pairs(self) -> list[tuple[nn.Module, nn.Module]]:
        """(online, target) modules whose target follows the online one by EMA; none by default."""
        return []

    def ema_momentum(self, step: int, total_steps: int) -> float:
        """The EMA momentum tau after optimiser step ``step`` (0-based) of ``total_steps``.

        Default: BYOL's cosine rise from ``base_tau`` to 1 (BYOL Sec. 3.2,
        :func:`~correlearn.train.schedules.ema_tau`).
        """
        return ema_tau(step, total_steps, self.base_tau)

    def momentum_update(self, tau: float) -> None:
        """One EMA step of every target of :meth:`ema_pairs` at momentum ``tau`` (in place)."""
        for online, target in self.ema_pairs():
            ema_update(target, online, tau)

    @torch.no_grad()
    def pretext_metrics(self, batches: list[dict[str, torch.Tensor]]) -> dict[str, float]:
        """The method's own task, scored on fixed held-out batches; none by default.

        Called in eval mode under ``no_grad`` by :mod:`correlearn.pretrain.heldout`, on batches that
        the method's held-out builder made once from data it never trains on.

        Args:
            batches: the held-out batches, tensors on the model's device.

        Returns:
            Named scores; ``pretext_metric`` names the one tables show.
        """
        return {}

    @torch.no_grad()
    def pretext_baselines(
        self, batches: list[dict[str, torch.Tensor]]
    ) -> dict[str, dict[str, float]]:
        """Trivial predictors of the same task on the same batches (they use no weights).

        Returns:
            Predictor name -> its scores under the names of :meth:`pretext_metrics`.
        """
        return {}

    @torch.no_grad()
    def pictures(self, batch: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
        """Named (H, W, 3) uint8 pictures of a training batch for the run's record; none by default."""
        return {}
