"""Dataset discovery: turn a :class:`DatasetSpec` into a sorted list of images or videos.

Supported layouts:

- ``image_folder``: every image under ``root`` (recursively); label -1.
- ``class_folders``: ``root/<class>/**/<image>``; label = index of the class in the sorted names.
- ``davis``: ``root/JPEGImages/480p/<seq>/<frame:05d>.jpg`` with masks in
  ``root/Annotations/480p/<seq>/<frame:05d>.png``.
- ``frame_folders``: ``root/<seq>/<frame>.<ext>``, one folder of frames per video.
- ``video_files``: ``root/**/<video>.{mp4,avi,mov,mkv,webm}``, read later with ``cv2.VideoCapture``.

Listing is deterministic (sorted, natural order for frame names) so that shard contents, and
therefore artifact keys downstream, do not depend on the file system's directory order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import Field

from correlearn.config import StrictModel

Layout = Literal["image_folder", "class_folders", "davis", "frame_folders", "video_files"]

# DAVIS sequences were shot at 24 fps (Perazzi et al., CVPR 2016); other frame folders: 30 fps.
DAVIS_FPS = 24.0
DEFAULT_FPS = 30.0


class DataError(ValueError):
    """A dataset cannot be used as specified; the message names the offending path."""


class DatasetSpec(StrictModel):
    """Where a dataset lives and how it is laid out.

    Attributes:
        name: dataset name, recorded as the ``dataset`` of every item.
        root: dataset root; a relative path is resolved against the ``base`` passed to the listers.
        layout: one of ``image_folder``, ``class_folders``, ``davis``, ``frame_folders``,
            ``video_files``.
        frame_step: keep every k-th frame of each video (as scene images, or as a video at fps / k).
        sequences: only these sequences (davis, frame_folders), videos (file stem, video_files) or
            classes (class_folders); an unknown name is an error.
        max_items: keep only the first N items (images, or videos for :func:`list_videos`).
        fps: frame rate of frame folders, which carry none; None means 24 for DAVIS, 30 otherwise.
            For video files it is the fallback when the container reports no frame rate.
        image_extensions: image file suffixes (case-insensitive).
        video_extensions: video file suffixes (case-insensitive).
    """

    name: str
    root: str
    layout: Layout
    frame_step: int = Field(1, ge=1)
    sequences: list[str] | None = None
    max_items: int | None = Field(None, ge=1)
    fps: float | None = Field(None, gt=0)
    image_extensions: list[str] = [".jpg", ".jpeg", ".png", ".bmp", ".webp"]
    video_extensions: list[str] = [".mp4", ".avi", ".mov", ".mkv", ".webm"]

    def effective_fps(self) -> float:
        """The frame rate to assume for frames that carry none (24 for DAVIS, else 30)."""
        if self.fps is not None:
            return float(self.fps)
        return DAVIS_FPS if self.layout == "davis" else DEFAULT_FPS


@dataclass(frozen=True)
class ImageItem:
    """One image; ``key`` is unique within a dataset (e.g. ``bear/00005``); label -1: unlabelled."""

    key: str
    path: str
    label: int
    source: str


@dataclass(frozen=True)
class VideoItem:
    """One video, as a list of frame files or as a video file.

    Attributes:
        key: unique name, e.g. the sequence name.
        frames: frame image paths in temporal order (frame folders), else None.
        video_path: path of a video file, else None.
        fps: frames per second of ``frames`` (already divided by the frame step); for a video file
            the fallback used when the container reports no frame rate.
        frame_step: keep every k-th decoded frame of ``video_path`` (frames lists are pre-strided).
        source: dataset name.
        masks: per frame, the annotation mask path or None (DAVIS only).
    """

    key: str
    frames: list[str] | None
    video_path: str | None
    fps: float
    frame_step: int = 1
    source: str = ""
    masks: list[str | None] | None = None


def resolve_root(spec: DatasetSpec, base: str | Path | None = None) -> Path:
    """Absolute dataset root; raises :class:`DataError` naming the path when it is missing."""
    root = Path(spec.root).expanduser()
    if not root.is_absolute():
        root = Path(base or ".") / root
    root = root.resolve()
    if not root.is_dir():
        raise DataError(f"dataset {spec.name!r}: root {root} does not exist or is not a folder")
    return root


def _natural_key(text: str) -> list:
    # "frame2" before "frame10": frame folders are not always zero-padded.
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text)]


def _files(folder: Path, exts: list[str], recursive: bool) -> list[Path]:
    suffixes = {e.lower() if e.startswith(".") else "." + e.lower() for e in exts}
    it = folder.rglob("*") if recursive else folder.iterdir()
    found = [p for p in it if p.is_file() and p.suffix.lower() in suffixes]
    return sorted(found, key=lambda p: _natural_key(p.relative_to(folder).as_posix()))


def _select(spec: DatasetSpec, names: list[str], where: Path) -> list[str]:
    if spec.sequences is None:
        return names
    missing = sorted(set(spec.sequences) - set(names))
    if missing:
        raise DataError(f"dataset {spec.name!r}: {missing} not found under {where}")
    return [n for n in names if n in set(spec.sequences)]


def _sequence_dirs(spec: DatasetSpec, root: Path) -> tuple[Path, list[str]]:
    seq_root = root / "JPEGImages" / "480p" if spec.layout == "davis" else root
    if not seq_root.is_dir():
        raise DataError(f"dataset {spec.name!r}: {seq_root} does not exist (layout {spec.layout})")
    names = sorted((p.name for p in seq_root.iterdir() if p.is_dir()), key=_natural_key)
    return seq_root, _select(spec, names, seq_root)


def _unique_keys(items: list, spec: DatasetSpec, root: Path) -> list:
    """Refuse two files that map to one item key (``x.jpg`` and ``x.png``, or ``x.JPG``).

    Keys are paths without their suffix; two items with one key would be merged by every
    key -> position map downstream (ORL mining would give one image the other's boxes).
    """
    seen: dict[str, str] = {}
    for it in items:
        where = it.path if isinstance(it, ImageItem) else (it.video_path or it.key)
        if it.key in seen:
            raise DataError(
                f"dataset {spec.name!r}: {seen[it.key]} and {where} share the item key "
                f"{it.key!r} (keys are paths without their suffix); rename or remove one"
            )
        seen[it.key] = where
    return items


def _nonempty(items: list, spec: DatasetSpec, root: Path, what: str) -> list:
    items = _unique_keys(items, spec, root)
    if spec.max_items is not None:
        items = items[: spec.max_items]
    if not items:
        raise DataError(
            f"dataset {spec.name!r}: no {what} found under {root} (layout {spec.layout})"
        )
    return items


def list_images(spec: DatasetSpec, base: str | Path | None = None) -> list[ImageItem]:
    """List the images of a dataset, sorted by key.

    Args:
        spec: the dataset spec.
        base: folder against which a relative ``spec.root`` is resolved (the config's folder).

    Returns:
        Items for ``image_folder``/``class_folders``, or every ``frame_step``-th frame of each
        sequence for ``davis``/``frame_folders`` (key ``<seq>/<frame stem>``).

    Raises:
        DataError: missing root, unknown sequence/class, no image found, or ``video_files``.
    """
    root = resolve_root(spec, base)
    items: list[ImageItem] = []
    if spec.layout == "image_folder":
        for p in _files(root, spec.image_extensions, recursive=True):
            key = p.relative_to(root).with_suffix("").as_posix()
            items.append(ImageItem(key, str(p), -1, spec.name))
    elif spec.layout == "class_folders":
        dirs = sorted((p.name for p in root.iterdir() if p.is_dir()), key=_natural_key)
        per_class = {d: _files(root / d, spec.image_extensions, recursive=True) for d in dirs}
        classes = [d for d in dirs if per_class[d]]  # an empty folder is not a class
        if {"JPEGImages", "Annotations"} <= set(classes):
            # Its two top folders would be two "classes" and a probe would score 100%.
            raise DataError(
                f"dataset {spec.name!r}: {root} is a DAVIS folder (JPEGImages, Annotations), not "
                "class folders; use layout davis (`--layout davis`: each sequence is a class)"
            )
        for label, cls in enumerate(classes):
            if spec.sequences is not None and cls not in spec.sequences:
                continue
            for p in per_class[cls]:
                key = p.relative_to(root).with_suffix("").as_posix()
                items.append(ImageItem(key, str(p), label, spec.name))
        _select(spec, classes, root)  # raises on unknown class names
    elif spec.layout in ("davis", "frame_folders"):
        seq_root, seqs = _sequence_dirs(spec, root)
        for seq in seqs:
            frames = _files(seq_root / seq, spec.image_extensions, recursive=False)
            for p in frames[:: spec.frame_step]:
                items.append(ImageItem(f"{seq}/{p.stem}", str(p), -1, spec.name))
    else:
        raise DataError(
            f"dataset {spec.name!r}: layout {spec.layout} holds videos, not images ({root}); "
            "use list_videos"
        )
    return _nonempty(items, spec, root, "images")


def list_classes(spec: DatasetSpec, base: str | Path | None = None) -> list[str]:
    """Class names of a ``class_folders`` dataset in label order (non-empty folders, sorted)."""
    root = resolve_root(spec, base)
    dirs = sorted((p.name for p in root.iterdir() if p.is_dir()), key=_natural_key)
    return [d for d in dirs if _files(root / d, spec.image_extensions, recursive=True)]


def list_videos(spec: DatasetSpec, base: str | Path | None = None) -> list[VideoItem]:
    """List the videos of a dataset, sorted by key.

    For ``davis``/``frame_folders`` each sequence folder is a video whose frames are every
    ``frame_step``-th file, at ``fps / frame_step``. For ``video_files`` the key is the path
    relative to the root without suffix; frames are decoded later (``shards.write_video_shards``).

    Args:
        spec: the dataset spec.
        base: folder against which a relative ``spec.root`` is resolved.

    Raises:
        DataError: missing root, unknown sequence, no video found, or an image-only layout.
    """
    root = resolve_root(spec, base)
    fps = spec.effective_fps()
    items: list[VideoItem] = []
    if spec.layout in ("davis", "frame_folders"):
        seq_root, seqs = _sequence_dirs(spec, root)
        ann_root = root / "Annotations" / "480p"
        for seq in seqs:
            frames = _files(seq_root / seq, spec.image_extensions, recursive=False)
            frames = frames[:: spec.frame_step]
            if not frames:
                continue
            masks = None
            if spec.layout == "davis" and (ann_root / seq).is_dir():
                cand = [ann_root / seq / f"{p.stem}.png" for p in frames]
                masks = [str(m) if m.is_file() else None for m in cand]
            items.append(
                VideoItem(
                    key=seq,
                    frames=[str(p) for p in frames],
                    video_path=None,
                    fps=fps / spec.frame_step,
                    source=spec.name,
                    masks=masks,
                )
            )
    elif spec.layout == "video_files":
        files = _files(root, spec.video_extensions, recursive=True)
        keys = [p.relative_to(root).with_suffix("").as_posix() for p in files]
        chosen = set(_select(spec, [Path(k).name for k in keys], root))
        for p, key in zip(files, keys, strict=True):
            if Path(key).name in chosen:
                items.append(VideoItem(key, None, str(p), fps, spec.frame_step, spec.name))
    else:
        raise DataError(
            f"dataset {spec.name!r}: layout {spec.layout} holds images, not videos ({root})"
        )
    return _nonempty(items, spec, root, "videos")
