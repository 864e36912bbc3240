"""CRW releases (ajabri/videowalk, "Space-Time Correspondence as a Contrastive Random Walk").

``code/train.py`` saves ``{"model", "optimizer", "lr_scheduler", "epoch", "args"}``, ``model``
being the state dict of the ``CRW`` module (``code/model.py``): its ``encoder`` is
``utils.From3D``, which keeps a torchvision ResNet-18 as ``model``, so the backbone sits under
``encoder.model.`` in torchvision names (``fc`` and ``avgpool`` removed by ``resnet.py``
``modify``; layer4 is trained and saved). The projection head beside it, ``selfsim_fc`` (a
``Linear`` for ``--head-depth 0``), is not the backbone and is reported as ignored.

Some files store a conv wrapped in a ``Sequential`` (padding, conv), i.e. ``conv1.1.weight``
and ``conv2.1.weight``; ``code/test.py`` renames every key holding one of those to
``conv1.weight``/``conv2.weight`` before loading, and so does :func:`_extract`.

How the reference evaluates these weights (reflect padding, res4 at stride 8) is not part of the
file: that is the ``crw_resnet`` label-propagation preset. Export writes ``{"model":
{"encoder.model.<torchvision name>"}}``, which ``code/test.py --model-type scratch --resume``
loads with ``utils.partial_load``.
"""

from __future__ import annotations

from typing import Any

from correlearn.checkpoints.formats.base import (
    Extracted,
    Format,
    StateDict,
    rename,
    split_prefix,
    unwrap,
)

PREFIX = "encoder.model."
CONTAINERS = ("model",)
# code/test.py: a "conv1.1.weight" or "conv2.1.weight" key becomes "conv1.weight"/"conv2.weight".
UNWRAP_CONV = [(r"^((?:.*\.)?conv[12])\.1\.weight$", r"\1.weight")]


def _has_backbone(sd: Any) -> bool:
    """A stem conv and a first block under ``encoder.model.``, plain or Sequential-wrapped."""
    stem = any(f"{PREFIX}conv1.{w}weight" in sd for w in ("", "1."))
    block = any(f"{PREFIX}layer1.0.conv1.{w}weight" in sd for w in ("", "1."))
    return stem and block


def _detect(obj: Any) -> bool:
    try:
        sd, _ = unwrap(obj, "crw", CONTAINERS)
    except ValueError:
        return False
    return _has_backbone(sd)


def _extract(obj: Any, branch: str | None) -> Extracted:
    sd, where = unwrap(obj, "crw", CONTAINERS)
    taken, rest = split_prefix(sd, PREFIX)
    return Extracted(rename(taken, UNWRAP_CONV), rest, f"file{where}['{PREFIX}*']")


def _wrap(state: StateDict, arch: str) -> Any:
    return {"model": {f"{PREFIX}{k}": v for k, v in state.items()}}


CRW = Format(
    name="crw",
    description="CRW releases (ajabri/videowalk): 'model' -> 'encoder.model.', selfsim_fc ignored",
    archs=("resnet",),
    detect=_detect,
    extract=_extract,
    wrap=_wrap,
)
