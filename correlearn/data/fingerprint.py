"""A source dataset as key material: its spec from the pipeline config and a hash of its files."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from correlearn.config import ConfigError, validate
from correlearn.data.sources import DatasetSpec, list_images, list_videos, resolve_root


def get_dataset(pipe: Any, name: str, **changes: Any) -> DatasetSpec:
    """The dataset spec ``datasets.<name>`` of the pipeline config (``name`` defaults to the key)."""
    specs = pipe.raw.get("datasets") or {}
    if name not in specs:
        raise ConfigError(
            f"{pipe.config_path}: datasets.{name} is not defined; have {sorted(specs)}"
        )
    raw = {"name": name, **specs[name], **{k: v for k, v in changes.items() if v is not None}}
    return validate(DatasetSpec, raw, pipe.config_path.name, prefix=f"datasets.{name}")


def fingerprint(spec: DatasetSpec, base: Path, videos: bool) -> dict[str, Any]:
    """Key material for a source dataset: its resolved root, item count and a hash of names+sizes.

    Hashing names and sizes (not mtimes, which a fresh clone changes) makes the key follow the
    data: adding, removing or replacing a file gives a new artifact.
    """
    root = resolve_root(spec, base)
    items = list_videos(spec, base) if videos else list_images(spec, base)
    h = hashlib.sha256()
    n_files = 0
    for it in items:
        paths = (it.frames or [it.video_path]) if videos else [it.path]
        for p in paths:
            h.update(f"{Path(p).relative_to(root)}:{Path(p).stat().st_size};".encode())
            n_files += 1
    return {
        "dataset": spec.model_dump(mode="json"),
        "root": str(root),
        "items": len(items),
        "files": n_files,
        "fingerprint": h.hexdigest()[:16],
    }
