"""VFS releases: the mmaction2 ResNet of xvjiarui/VFS (``mmaction/models/backbones/resnet.py``).

Every conv there is an mmcv ``ConvModule`` holding ``conv`` and ``bn``: the stem is
``conv1.conv``/``conv1.bn``, block convs ``layerL.B.convK.conv``/``.bn`` and the shortcut
``layerL.B.downsample.conv``/``.bn``. The released files are mmcv checkpoints
(``{"meta", "state_dict", "optimizer"}``) with the backbone under ``backbone.`` and the SimSiam
head under ``img_head.``. VFS's ``tools/convert_weights/convert_to_pretrained.py`` maps them to
torchvision names in ``{"state_dict", "meta"}``: the "pretrained" file that ``tools/test.py`` and
``train_siamfc.py --pretrained`` load (mmaction's ``_load_torchvision_checkpoint`` reads
torchvision names). Import reads both layouts; export writes the pretrained one.
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

PREFIX = "backbone."

# mmaction2 (ConvModule) -> torchvision.
TO_TORCHVISION = [
    (r"^conv1\.conv\.", "conv1."),
    (r"^conv1\.bn\.", "bn1."),
    (r"^(layer\d+\.\d+)\.downsample\.conv\.", r"\1.downsample.0."),
    (r"^(layer\d+\.\d+)\.downsample\.bn\.", r"\1.downsample.1."),
    (r"^(layer\d+\.\d+)\.conv(\d)\.conv\.", r"\1.conv\2."),
    (r"^(layer\d+\.\d+)\.conv(\d)\.bn\.", r"\1.bn\2."),
]


def _pretrained(obj: Any, sd: Any) -> bool:
    """The converted layout: mmcv's ``{"state_dict", "meta"}`` holding torchvision names."""
    return isinstance(obj, dict) and "meta" in obj and "conv1.weight" in sd


def _detect(obj: Any) -> bool:
    try:
        sd, _ = unwrap(obj, "vfs", ("state_dict",))
    except ValueError:
        return False
    release = f"{PREFIX}conv1.conv.weight" in sd or "conv1.conv.weight" in sd
    return release or _pretrained(obj, sd)


def _extract(obj: Any, branch: str | None) -> Extracted:
    sd, where = unwrap(obj, "vfs", ("state_dict",))
    if _pretrained(obj, sd) and "conv1.conv.weight" not in sd:
        return Extracted(dict(sd), [], f"file{where} (torchvision names)")
    prefix = PREFIX if f"{PREFIX}conv1.conv.weight" in sd else ""
    taken, rest = split_prefix(sd, prefix)
    return Extracted(rename(taken, TO_TORCHVISION), rest, f"file{where}['{prefix}*']")


def _wrap(state: StateDict, arch: str) -> Any:
    # What convert_to_pretrained.py writes and _load_torchvision_checkpoint reads.
    return {"state_dict": dict(state), "meta": {}}


VFS = Format(
    name="vfs",
    description="VFS releases (xvjiarui/VFS): mmaction2 ResNet, ConvModule conv/bn, 'backbone.'",
    archs=("resnet",),
    detect=_detect,
    extract=_extract,
    wrap=_wrap,
)
