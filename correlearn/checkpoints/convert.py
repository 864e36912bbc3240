"""Import a checkpoint file into canonical backbone weights, and export them to a format.

``import_file`` = read safely -> detect or take the format -> extract the backbone -> infer the
architecture -> refuse partial coverage. ``export_state`` is the inverse for one format.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from correlearn.checkpoints.arch import (
    Coverage,
    add_cls_pos_slot,
    arch_family,
    infer_backbone,
    load_covering,
)
from correlearn.checkpoints.files import CheckpointError, load_checkpoint_file
from correlearn.checkpoints.formats import detect_format, fitting_formats, get_format


@dataclass
class Imported:
    """A checkpoint file read into a registered backbone.

    Attributes:
        backbone: the loaded module (eval mode, CPU).
        name: registry name; ``kwargs``: its constructor kwargs (``backbone.json``).
        format: the format used; ``detected``: whether ``auto`` chose it.
        branch: the sub-network taken (``online``, ``teacher``...), or None.
        source: where in the file the backbone was.
        ignored: file keys that are not the backbone (heads, decoders, the other branch).
        coverage: loaded/total keys, unexpected canonical keys, filled BN counters.
        notes: other changes (a CLS slot added to ``pos_embed``).
    """

    backbone: nn.Module
    name: str
    kwargs: dict[str, Any]
    format: str
    detected: bool
    branch: str | None
    source: str
    ignored: list[str]
    coverage: Coverage
    notes: list[str] = field(default_factory=list)

    def report(self) -> dict[str, Any]:
        """A JSON-friendly summary (``import.json``, the CLI's lines)."""
        c = self.coverage
        return {
            "format": self.format,
            "detected": self.detected,
            "branch": self.branch,
            "backbone": self.name,
            "backbone_kwargs": self.kwargs,
            "source": self.source,
            "loaded": c.loaded,
            "total": c.total,
            "unexpected": c.unexpected,
            "filled": c.filled,
            "ignored": len(self.ignored),
            "ignored_first": self.ignored[:10],
            "notes": self.notes,
        }


def import_file(
    path: str | Path, fmt: str = "auto", branch: str | None = None, backbone: str | None = None
) -> Imported:
    """Read ``path`` as format ``fmt`` (``auto``: detect) into a registered backbone.

    Args:
        path: the checkpoint file.
        fmt: a name of :data:`~correlearn.checkpoints.formats.FORMATS` or ``auto``.
        branch: the format's sub-network (e.g. ``target``); None is the format's default.
        backbone: a registry name to load into; None infers it from the weights.

    Raises:
        CheckpointError: one line naming the file and the first problem.
    """
    path = Path(path)
    obj = load_checkpoint_file(path)
    try:
        f = detect_format(obj, str(path)) if fmt == "auto" else get_format(fmt)
        if branch is not None and branch not in f.branches:
            raise CheckpointError(
                f"format {f.name} has no branch {branch!r}"
                + (f" (branches: {', '.join(f.branches)})" if f.branches else "")
            )
        ex = f.extract(obj, branch)
        if not ex.state:
            raise CheckpointError(f"no {f.name} backbone weights in {ex.source or 'the file'}")
        bad = [k for k, v in ex.state.items() if v.is_floating_point() and not v.isfinite().all()]
        if bad:  # such weights score 0 everywhere: refuse them before anything is stored
            raise CheckpointError(
                f"{len(bad)} of {len(ex.state)} tensors hold NaN or Inf (first: {bad[0]}); "
                "the weights are unusable"
            )
        notes = [n for n in [add_cls_pos_slot(ex.state)] if n]
        fits = [g.name for g in fitting_formats(obj)] if fmt == "auto" else []
        if len(fits) > 1:  # e.g. torchvision names in {"state_dict", "meta"}: vfs and openselfsup
            notes.append(
                f"formats {' and '.join(fits)} both fit this file; chose {f.name} "
                "(pass --format to choose another)"
            )
        if arch_family(ex.state) not in f.archs:
            raise CheckpointError(f"format {f.name} holds {'/'.join(f.archs)} backbones only")
        name, kwargs = (backbone, {}) if backbone else infer_backbone(ex.state)
        if backbone and "pos_embed" in ex.state:
            kwargs = infer_backbone(ex.state)[1]
        module, cov = load_covering(ex.state, name, kwargs)
    except CheckpointError as exc:
        msg = str(exc)
        raise CheckpointError(msg if msg.startswith(str(path)) else f"{path}: {msg}") from None
    default_branch = f.branches[0] if f.branches else None
    return Imported(
        module, name, kwargs, f.name, fmt == "auto", branch or default_branch, ex.source,
        ex.ignored, cov, notes,
    )  # fmt: skip


def export_state(state: dict[str, torch.Tensor], fmt: str) -> Any:
    """Canonical backbone weights as the object format ``fmt`` saves (``torch.save`` it)."""
    f = get_format(fmt)
    family = arch_family(state)
    if family not in f.archs:
        raise CheckpointError(f"format {fmt} holds {'/'.join(f.archs)} backbones, not a {family}")
    return f.wrap(dict(state), family)
