"""RoI-pair retrieval between kNN images for ORL stage 2 (ORL paper Sec. 3.1 step (iii)).

Filtered RoIs of an image and of each of its K neighbours are cropped, resized to 224 and embedded
with the stage-1 backbone; the top-ranked N = 10% pairs of their cosine matrix are kept (Sec. 3.2).
Reference: ``Correspondence.forward_test`` (``openselfsup/models/correspondence.py``) in
Jiahao000/ORL. Boxes are xyxy in original-image pixels (see :mod:`correlearn.mining.boxes`); the
reference JSON layout of the pairs is :mod:`correlearn.mining.ref_json`.
:func:`mine_collection_pairs` runs the retrieval over a whole image set (the ``correspondence``
stage): every image's RoIs are embedded once into a memory map on disk, however many kNN lists the
image appears in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

PAIRS_SCHEMA = pa.schema(
    [
        ("key", pa.string()),
        ("nbr_key", pa.string()),
        ("nbr_rank", pa.int32()),
        ("q_box", pa.list_(pa.float32(), 4)),
        ("n_box", pa.list_(pa.float32(), 4)),
        ("score", pa.float32()),
    ]
)


def _top_pairs(sim: np.ndarray, ratio: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    sim = np.asarray(sim, dtype=np.float32)
    nq, nn_ = sim.shape
    n = min(max(int(ratio * nq), 1), nq * nn_)
    flat = sim.reshape(-1)
    # Stable sort: ties go to the lower (query, neighbour) index, where torch.topk is unspecified.
    order = np.argsort(-flat, kind="stable")[:n]
    return order // nn_, order % nn_, flat[order]


def select_box_pairs(sim: np.ndarray, ratio: float = 0.1) -> list[tuple[int, int, float]]:
    """Top-ranked RoI pairs of one (image, neighbour) cosine matrix (ORL Sec. 3.1 (iii)).

    The count follows the reference: ``int(ratio * Nq)`` pairs ranked over the whole flattened
    ``Nq x Nn`` matrix (a query RoI may appear in several pairs), and 1 pair when ``int()`` gives 0
    (``topk_num if topk_num > 0 else 1``); never more than ``Nq * Nn``.

    Args:
        sim: ``(Nq, Nn)`` cosine similarities between query RoIs (rows) and neighbour RoIs.
        ratio: N as a fraction of the query RoI count (0.1 in Sec. 3.2).

    Returns:
        ``[(qi, ni, score), ...]`` sorted by descending score.
    """
    qi, ni, sc = _top_pairs(sim, ratio)
    return [(int(a), int(b), float(c)) for a, b, c in zip(qi, ni, sc, strict=True)]


def crop_boxes(
    img: np.ndarray,
    boxes: np.ndarray,
    size: int = 224,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> torch.Tensor:
    """Crop RoIs and resize each to ``size x size`` (ORL Sec. 3.1 (ii): "crop and resize ... 224").

    Boxes are rounded to whole pixels and clipped to the image (at least 1 px). Resizing is bilinear
    with antialiasing, which matches the PIL ``TF.resized_crop`` of the reference, then the ImageNet
    normalisation of its ``format_pipeline``.

    Args:
        img: ``(H, W, 3)`` uint8 RGB image.
        boxes: ``(N, 4)`` xyxy boxes in ``img`` pixels.
        size: Output side.
        mean: Per-channel mean of the normalisation.
        std: Per-channel std of the normalisation.

    Returns:
        ``(N, 3, size, size)`` float32 tensor.
    """
    h, w = img.shape[:2]
    t = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).float().div_(255)
    b = np.round(np.asarray(boxes, dtype=np.float64).reshape(-1, 4)).astype(np.int64)
    lo = np.clip(b[:, :2], 0, [w - 1, h - 1])
    hi = np.clip(b[:, 2:], lo + 1, [w, h])  # at least 1 px inside the image
    out = torch.empty((len(b), 3, size, size), dtype=torch.float32)
    for i, (x1, y1, x2, y2) in enumerate(np.concatenate([lo, hi], axis=1).tolist()):
        crop = t[:, y1:y2, x1:x2].unsqueeze(0)
        out[i] = F.interpolate(
            crop, size=(size, size), mode="bilinear", align_corners=False, antialias=True
        )[0]
    m = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
    return out.sub_(m).div_(s)


def embed_boxes(
    backbone: nn.Module,
    crops: torch.Tensor,
    batch_size: int = 64,
    device: str | torch.device = "cpu",
) -> np.ndarray:
    """Pooled, L2-normalised backbone features of RoI crops (ORL Sec. 3.1 (iii)).

    The reference embeds RoIs with the backbone's res5 average pool (not the projector); with a
    ``correlearn.models`` backbone that is ``backbone(x)``. Runs in eval mode under
    ``torch.inference_mode`` and restores the previous train/eval mode.

    Args:
        backbone: Module mapping ``(B, 3, H, W)`` to pooled ``(B, D)`` features.
        crops: ``(N, 3, H, W)`` float crops from :func:`crop_boxes`.
        batch_size: Crops per forward pass.
        device: Device of ``backbone``.

    Returns:
        ``(N, D)`` float32 unit-norm rows.
    """
    was_training = backbone.training
    backbone.eval()
    feats = []
    try:
        with torch.inference_mode():
            for s in range(0, len(crops), batch_size):
                x = crops[s : s + batch_size].to(device, non_blocking=True)
                feats.append(F.normalize(backbone(x).float(), dim=1).cpu())
    finally:
        backbone.train(was_training)
    if not feats:
        return np.zeros((0, int(getattr(backbone, "out_dim", 0))), dtype=np.float32)
    return torch.cat(feats).numpy()


def mine_pairs(
    image_keys: Sequence[str],
    knn_ids: np.ndarray,
    boxes_per_image: Sequence[np.ndarray],
    box_embeddings_per_image: Sequence[np.ndarray],
    ratio: float = 0.1,
) -> pa.Table:
    """RoI pairs between every image and each of its kNN images (ORL Sec. 3.1 (iii)).

    Args:
        image_keys: ``N`` image keys.
        knn_ids: ``(N, K)`` neighbour indices into ``image_keys`` (rank order; ``-1`` is skipped).
        boxes_per_image: ``N`` arrays ``(B_i, 4)`` of filtered xyxy RoIs, indexed like
            ``image_keys`` (any indexable works, e.g. a lazy loader).
        box_embeddings_per_image: ``N`` arrays ``(B_i, D)`` of unit-norm RoI embeddings, same order.
        ratio: N as a fraction of the query RoI count (see :func:`select_box_pairs`).

    Returns:
        Table with schema ``PAIRS_SCHEMA`` (``key, nbr_key, nbr_rank, q_box, n_box, score``), rows
        ordered by image, neighbour rank, then descending score.
    """
    knn_ids = np.asarray(knn_ids)
    cols: dict[str, list[Any]] = {name: [] for name in PAIRS_SCHEMA.names}
    for i, key in enumerate(image_keys):
        eq = np.asarray(box_embeddings_per_image[i], dtype=np.float32)
        bq = np.asarray(boxes_per_image[i], dtype=np.float32).reshape(-1, 4)
        if len(eq) == 0:
            continue
        for rank, j in enumerate(knn_ids[i].tolist()):
            if j < 0:
                continue
            en = np.asarray(box_embeddings_per_image[j], dtype=np.float32)
            if len(en) == 0:
                continue
            bn = np.asarray(boxes_per_image[j], dtype=np.float32).reshape(-1, 4)
            qi, ni, sc = _top_pairs(eq @ en.T, ratio)
            n = len(sc)
            cols["key"] += [key] * n
            cols["nbr_key"] += [image_keys[j]] * n
            cols["nbr_rank"] += [rank] * n
            cols["q_box"].append(bq[qi])
            cols["n_box"].append(bn[ni])
            cols["score"].append(sc)
    return pairs_table(cols)


def pairs_table(cols: dict[str, list[Any]]) -> pa.Table:
    """A :data:`PAIRS_SCHEMA` table from column lists (boxes and scores as chunks of arrays)."""

    def cat(chunks: list[np.ndarray]) -> np.ndarray:
        return (
            np.concatenate(chunks).astype(np.float32).reshape(-1) if chunks else np.zeros(0, "f4")
        )

    q, n = (pa.array(cat(cols[c]), pa.float32()) for c in ("q_box", "n_box"))
    arrays = [
        pa.array(cols["key"], pa.string()),
        pa.array(cols["nbr_key"], pa.string()),
        pa.array(cols["nbr_rank"], pa.int32()),
        pa.FixedSizeListArray.from_arrays(q, 4),
        pa.FixedSizeListArray.from_arrays(n, 4),
        pa.array(cat(cols["score"]), pa.float32()),
    ]
    return pa.Table.from_arrays(arrays, schema=PAIRS_SCHEMA)


class _Crops(Dataset):
    """``ds[i]`` -> the ``(B_i, 3, size, size)`` RoI crops of image ``i`` (:func:`crop_boxes`)."""

    def __init__(self, images: Sequence[Mapping[str, Any]], boxes: Sequence[np.ndarray], size: int):
        self.images, self.boxes, self.size = images, boxes, size

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> torch.Tensor:
        return crop_boxes(self.images[i]["image"], self.boxes[i], self.size)


class _Rows:
    """``rows[i]`` -> the (B_i, D) slice of image ``i`` in a flat (sum B_i, D) array."""

    def __init__(self, flat: np.ndarray, starts: np.ndarray):
        self.flat, self.starts = flat, starts

    def __getitem__(self, i: int) -> np.ndarray:
        return np.asarray(self.flat[self.starts[i] : self.starts[i + 1]])


def mine_collection_pairs(
    images: Sequence[Mapping[str, Any]],
    keys: Sequence[str],
    boxes: Sequence[np.ndarray],
    knn_ids: np.ndarray,
    backbone: nn.Module,
    cache: Path,
    ratio: float = 0.1,
    crop_size: int = 224,
    batch_size: int = 128,
    num_workers: int = 0,
    device: str | torch.device = "cpu",
) -> tuple[pa.Table, int]:
    """:func:`mine_pairs` over a whole image set, every image's RoIs embedded exactly once.

    The embeddings of all RoIs live in one memory map at ``cache`` (removed at the end), however
    many kNN lists an image appears in; crops are made by ``num_workers`` loader processes.

    Args:
        images: ``N`` samples ``{"image": (H, W, 3) uint8, ...}`` (a ``ShardedImages``).
        keys: their ``N`` keys.
        boxes: ``N`` arrays ``(B_i, 4)`` of filtered xyxy RoIs.
        knn_ids: ``(N, K)`` neighbour indices (``-1`` is skipped).
        backbone: pooled backbone ``(B, 3, H, W) -> (B, D)`` with ``out_dim``, on ``device``.
        cache: where the ``(sum B_i, D)`` float32 memory map goes.
        ratio: N as a fraction of the query RoI count.
        crop_size: side of the crops fed to the backbone.
        batch_size: crops per forward pass.
        num_workers: decoding/cropping worker processes.
        device: where the backbone runs.

    Returns:
        The pairs table (:data:`PAIRS_SCHEMA`) and the number of RoIs embedded.
    """
    starts = np.concatenate([[0], np.cumsum([len(b) for b in boxes])]).astype(np.int64)
    shape = (int(starts[-1]), backbone.out_dim)
    flat = (
        np.lib.format.open_memmap(cache, "w+", np.float32, shape) if shape[0] else np.zeros(shape)
    )
    data = _Crops(images, boxes, crop_size)
    loader = DataLoader(data, batch_size=None, num_workers=num_workers)
    for i, crops in enumerate(tqdm(loader, total=len(keys), desc="embed RoIs", unit="img")):
        if len(crops):
            flat[starts[i] : starts[i + 1]] = embed_boxes(backbone, crops, batch_size, device)
    table = mine_pairs(keys, knn_ids, boxes, _Rows(flat, starts), ratio)
    del flat
    cache.unlink(missing_ok=True)
    return table, int(starts[-1])
