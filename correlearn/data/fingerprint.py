"""A source dataset as key material: its spec from the pipeline config and a hash of its files."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from correlearn.config import ConfigError, validate
from correlearn.data.sources import DatasetSpec, list_images, list_videos, resolve_root

#: Files up to this size are hashed whole; larger ones (video files) by samples of their bytes.
FULL_HASH_BYTES = 8 << 20
_SAMPLE = 1 << 20
_SAMPLES = 8


def get_dataset(pipe: Any, name: str, **changes: Any) -> DatasetSpec:
    """The dataset spec ``datasets.<name>`` of the pipeline config (``name`` defaults to the key)."""
    specs = pipe.raw.get("datasets") or {}
    if name not in specs:
        raise ConfigError(
            f"{pipe.config_path}: datasets.{name} is not defined; have {sorted(specs)}"
        )
    raw = {"name": name, **specs[name], **{k: v for k, v in changes.items() if v is not None}}
    return validate(DatasetSpec, raw, pipe.config_path.name, prefix=f"datasets.{name}")


def file_digest(path: str | Path) -> str:
    """A digest of a file's content.

    All of its bytes up to :data:`FULL_HASH_BYTES` (frames, masks, lists), else its size and eight
    evenly spaced 1 MiB samples (video files of a large corpus, which whole-file hashing would
    make minutes to key).

    Content, not names, sizes or mtimes: a mask relabelled or shifted in place keeps its size,
    and a fresh clone changes every mtime.
    """
    path = Path(path)
    size = path.stat().st_size
    h = hashlib.blake2b(digest_size=16)
    h.update(str(size).encode())
    with path.open("rb") as f:
        if size <= FULL_HASH_BYTES:
            h.update(f.read())
        else:
            for i in range(_SAMPLES):
                f.seek((size - _SAMPLE) * i // (_SAMPLES - 1))
                h.update(f.read(_SAMPLE))
    return h.hexdigest()


def hash_files(root: Path, files: Iterable[str | Path]) -> tuple[str, int]:
    """``(digest, count)`` over the files' paths relative to ``root`` and their contents."""
    h = hashlib.sha256()
    n = 0
    for p in files:
        h.update(f"{Path(p).relative_to(root)}:{file_digest(p)};".encode())
        n += 1
    return h.hexdigest()[:16], n


def annotation_files(root: Path, sequences: Iterable[str]) -> list[Path]:
    """Every file under ``Annotations/480p/<seq>`` of a DAVIS-layout root: what its protocols read."""
    out: list[Path] = []
    for seq in sequences:
        folder = root / "Annotations" / "480p" / seq
        if folder.is_dir():
            out += sorted(p for p in folder.iterdir() if p.is_file())
    return out


def fingerprint(spec: DatasetSpec, base: Path, videos: bool) -> dict[str, Any]:
    """Key material for a source dataset: its resolved root, item count and a hash of its files.

    Every file a consumer reads enters the hash by its path relative to the root and its content
    (:func:`file_digest`): frames or images, and for a DAVIS-layout video set its annotation masks
    too, so changed ground truth is a new artifact, never a stale cache hit.
    """
    root = resolve_root(spec, base)
    items = list_videos(spec, base) if videos else list_images(spec, base)
    files: list[str | Path] = []
    for it in items:
        files += (it.frames or [it.video_path]) if videos else [it.path]
    if videos and spec.layout == "davis":
        files += annotation_files(root, [it.key for it in items])
    digest, n_files = hash_files(root, files)
    return {
        "dataset": spec.model_dump(mode="json"),
        "root": str(root),
        "items": len(items),
        "files": n_files,
        "fingerprint": digest,
    }
