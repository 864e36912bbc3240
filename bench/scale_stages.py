"""The image and video jobs of ``bench/scale.py``: image_shards, embed, proposals, propagation.

Each ``*_job(n, ...)`` runs in a fresh child (``scale_harness.in_child``): it prepares its inputs
(untimed) and returns the callable that is timed, which calls the library functions the stage
calls (``write_image_shards``; ``embed_shard`` per shard + ``merge_embeddings``; ``propose_shard``
per shard + ``merge_box_shards``; ``propagate_sequence``).

Images are real DAVIS-2016 480p frames spread over all sequences (``../shared/data`` next to the
checkout, else the embedded ``data/davis-mini``), with horizontally flipped copies where they run
out; the propagated video is one sequence played forwards and backwards (ping-pong) as long as
needed.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DAVIS_ROOTS = [ROOT.parent / "shared" / "data" / "davis2016-train", ROOT / "data" / "davis-mini"]


def davis_root() -> Path:
    """The first DAVIS-layout folder that exists (shared train split, else davis-mini)."""
    for root in DAVIS_ROOTS:
        if (root / "JPEGImages" / "480p").is_dir():
            return root
    raise FileNotFoundError(f"no DAVIS frames in any of {[str(r) for r in DAVIS_ROOTS]}")


def source_items(n: int, work: Path) -> list:
    """``n`` image items: real frames spread over every sequence, then flipped copies.

    Args:
        n: images wanted.
        work: folder for the flipped copies (written here, untimed).

    Returns:
        ``ImageItem`` list, unique keys, in a fixed order.
    """
    from correlearn.data.sources import ImageItem

    frames = sorted((davis_root() / "JPEGImages" / "480p").glob("*/*.jpg"))
    pick = np.unique(np.linspace(0, len(frames) - 1, min(n, len(frames))).round().astype(int))
    items = [ImageItem(f"{frames[i].parent.name}/{frames[i].stem}", str(frames[i]), -1, "davis")
             for i in pick]  # fmt: skip
    flipped = work / "flipped"
    flipped.mkdir(parents=True, exist_ok=True)
    for j in range(n - len(items)):  # more than the real frames: mirrored copies
        src = items[j % len(pick)]
        dst = flipped / f"{j:06d}.jpg"
        cv2.imwrite(str(dst), cv2.flip(cv2.imread(src.path), 1))
        items.append(ImageItem(f"flipped/{j:06d}", str(dst), -1, "davis"))
    return items


def spread(items: list, n: int) -> list:
    """``n`` of ``items`` evenly spaced over the list (every sequence at every size)."""
    return [items[i] for i in np.linspace(0, len(items) - 1, n).round().astype(int)]


def shards_job(n: int, items: list, out_dir: str, max_short_side: int | None):
    """``write_image_shards`` of ``n`` of the items into ``out_dir`` (one shard of 1000)."""
    from correlearn.data.shards import write_image_shards

    chosen = spread(items, n)

    def timed() -> tuple[int, int]:
        summary = write_image_shards(chosen, out_dir, 1000, max_short_side, progress=False)
        return summary.n_samples, summary.n_bytes

    return timed


def checkpoint_job(_n: int, folder: str, method: dict):
    """Write a random-init BYOL ``pretrain_byol`` artifact (what ``embed`` reads) into ``folder``.

    The files are those the stage writes: ``backbone.json``, ``train/last.pt`` (the method's
    state dict) and a ``manifest.json`` holding the method config. The timed part is empty: this
    is set-up for :func:`embed_job`, not a measured point.
    """
    import torch

    from correlearn.methods.byol import BYOL, BYOLConfig
    from correlearn.models.io import write_backbone_json
    from correlearn.train.checkpoint import save_checkpoint

    torch.manual_seed(0)
    cfg = BYOLConfig(**method)
    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    write_backbone_json(path, cfg.backbone, cfg.backbone_kwargs, "byol")
    save_checkpoint({"model": BYOL(cfg).state_dict(), "step": 0}, path / "train")
    manifest = {"config": {"method": cfg.model_dump(mode="json")}}
    (path / "manifest.json").write_text(json.dumps(manifest))
    return lambda: None


def _out_dir(shards_dir: str, stage: str) -> str:
    """A fresh output folder next to the shards (inside the run's temporary folder)."""
    out = Path(f"{shards_dir}-{stage}")
    out.mkdir()
    return str(out)


def embed_job(n: int, shards_dir: str, ckpt_dir: str, resize: int, crop: int):
    """``embed_shard`` over every shard of ``shards_dir`` (``n`` images), then the merge."""
    from correlearn.artifact_ref import ArtifactRef
    from correlearn.data.readers import ShardedImages
    from correlearn.mining.embeddings import EmbedConfig, embed_shard, merge_embeddings

    cfg = EmbedConfig(resize=resize, crop=crop, device="cpu")
    ckpt = ArtifactRef("pretrain_byol", "bench", ckpt_dir)
    images = ShardedImages(shards_dir)
    names = sorted(set(images.shards))
    out = _out_dir(shards_dir, "embed")

    def timed() -> tuple[int, int]:
        for name in names:
            embed_shard(shards_dir, name, ckpt, cfg, out)
        return merge_embeddings(out, names, images.keys).shape

    return timed


def proposals_job(n: int, shards_dir: str, long_side: int | None):
    """``propose_shard`` (selective search + ORL filter) over every shard, then the merge."""
    from correlearn.data.readers import ShardedImages
    from correlearn.mining.box_shards import ProposalsConfig, merge_box_shards, propose_shard

    cfg = ProposalsConfig(long_side=long_side)
    names = sorted(set(ShardedImages(shards_dir).shards))
    out = _out_dir(shards_dir, "proposals")

    def timed() -> int:
        for name in names:
            propose_shard(shards_dir, name, cfg, out)
        return merge_box_shards(out, names).num_rows

    return timed


def ping_pong(frames: list, n: int) -> list:
    """The first ``n`` frames of ``frames`` played forwards, backwards, forwards, ..."""
    cycle = frames + frames[-2:0:-1] if len(frames) > 1 else frames
    return [cycle[i % len(cycle)] for i in range(n)]


def lp_job(n: int, seq: str, short_side: int):
    """``propagate_sequence`` of ``n`` frames (VFS ResNet protocol, random-init ResNet-18 res4).

    The feature extractor is wrapped in a timer, so the timed callable returns the seconds spent
    in features (the rest is propagation and the argmax to full-size masks) and the number of
    (target, context frame) pairs propagated, which grows faster than ``n`` until the context
    holds its ``m + 1`` frames.
    """
    import torch

    from correlearn.eval.features import dense_feature_fn
    from correlearn.eval.label_propagation import (
        LabelPropConfig,
        context_indices,
        load_davis_sequence,
        propagate_sequence,
    )
    from correlearn.models import build_backbone

    frames, masks, _ = load_davis_sequence(davis_root(), seq, n)
    frames = ping_pong(frames, n)
    cfg = LabelPropConfig.preset("vfs_resnet", short_side=short_side)
    torch.manual_seed(0)
    net = build_backbone("resnet18", strides=cfg.strides).eval()
    fn = dense_feature_fn(net, cfg.layer)
    spent = [0.0]
    pairs = sum(len(context_indices(t, cfg.context_frames, cfg.context)) for t in range(1, n))

    def timed_fn(x):
        t0 = time.perf_counter()
        out = fn(x)
        spent[0] += time.perf_counter() - t0
        return out

    def timed() -> tuple[float, int]:
        propagate_sequence(timed_fn, frames, masks[0], cfg)
        return spent[0], pairs

    return timed
