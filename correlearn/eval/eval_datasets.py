"""Dataset specs of the evaluation protocols whose layouts the training readers do not list.

``datasets.<name>`` with ``layout: jhmdb | vip | voc07 | otb | got10k`` (the readers are
:mod:`correlearn.eval.pose`, :mod:`correlearn.eval.parts`, :mod:`correlearn.eval.svm` and
:mod:`correlearn.eval.otb`). The artifact key follows the files a stage reads: their paths relative
to the root and their contents are hashed (:func:`fingerprint_files`), as
:func:`correlearn.data.fingerprint.fingerprint` does for the other layouts. A stage's ``resolve``
is :func:`resolve_source`; its ``run`` gets the spec and root back with :func:`source_of`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from correlearn.config import ConfigError, StrictModel, validate
from correlearn.data.fingerprint import hash_files
from correlearn.data.sources import DataError
from correlearn.stage import StageContext

EvalLayout = Literal["jhmdb", "vip", "voc07", "otb", "got10k"]


class EvalDatasetSpec(StrictModel):
    """An evaluation set in its published layout.

    Attributes:
        name: the key under ``datasets:``.
        root: dataset root (JHMDB: holds ``Rename_Images``, ``joint_positions``, ``splits``; VIP:
            ``Images``, ``Category_ids``, ``lists``; VOC07: ``VOCdevkit/VOC2007`` or that folder
            itself; OTB: ``<seq>/img``; GOT-10k: ``<subset>/list.txt``); a relative path is
            resolved against the config's base folder.
        layout: ``jhmdb``, ``vip``, ``voc07``, ``otb`` or ``got10k``.
        videos: only these videos (JHMDB ``<class>/<video>``, VIP ``<video>``, OTB and GOT-10k
            sequence names), in this order, instead of the split file's list.
        max_items: only the first N videos (or, for VOC07, N images per split).
        subset: GOT-10k subset folder (``train``, ``val``).
    """

    name: str
    root: str
    layout: EvalLayout
    videos: list[str] | None = None
    max_items: int | None = Field(None, ge=1)
    subset: str = "train"


def get_eval_dataset(pipe: Any, name: str, layout: str) -> EvalDatasetSpec:
    """``datasets.<name>`` of the pipeline config, which must have ``layout``."""
    specs = pipe.raw.get("datasets") or {}
    source = pipe.config_path.name
    if name not in specs:
        raise ConfigError(f"{source}: datasets.{name} is not defined; have {sorted(specs)}")
    spec = validate(EvalDatasetSpec, {"name": name, **specs[name]}, source, f"datasets.{name}")
    if spec.layout != layout:
        raise ConfigError(
            f"{source}: datasets.{name}.layout: {spec.layout!r}, but this stage reads {layout!r}"
        )
    return spec


def eval_root(spec: EvalDatasetSpec, base: str | Path) -> Path:
    """Absolute root; a missing folder is a :class:`DataError` naming it."""
    root = Path(spec.root).expanduser()
    root = (root if root.is_absolute() else Path(base) / root).resolve()
    if not root.is_dir():
        raise DataError(f"dataset {spec.name!r}: root {root} does not exist or is not a folder")
    return root


def fingerprint_files(spec: EvalDatasetSpec, root: Path, files: list[Path]) -> dict[str, Any]:
    """Key material: the spec, the root, and a hash of the files' relative paths and contents."""
    digest, n = hash_files(root, sorted(files))
    return {
        "dataset": spec.model_dump(mode="json"),
        "root": str(root),
        "files": n,
        "fingerprint": digest,
    }


def resolve_source(
    pipe: Any, name: str, layout: str, files: Callable[[EvalDatasetSpec, Path], list[Path]]
) -> dict[str, Any]:
    """A stage's ``resolve``: ``{"source": fingerprint of the files the stage will read}``.

    Args:
        pipe: the pipeline (its config's ``datasets`` and base folder).
        name: the dataset under ``datasets:``.
        layout: the layout the stage reads.
        files: ``files(spec, root)`` -> the files the stage reads.
    """
    spec = get_eval_dataset(pipe, name, layout)
    root = eval_root(spec, pipe.base_dir)
    return {"source": fingerprint_files(spec, root, files(spec, root))}


def source_of(ctx: StageContext) -> tuple[EvalDatasetSpec, Path]:
    """The running stage's dataset (resolved by :func:`resolve_source`) and its absolute root."""
    spec = EvalDatasetSpec.model_validate(ctx.resolved["source"]["dataset"])
    return spec, eval_root(spec, ctx.base_dir)
