"""RoI-pair retrieval between kNN images for ORL stage 2 (ORL paper Sec. 3.1 step (iii)).

Filtered RoIs of an image and of each of its K neighbours are cropped, resized to 224 and embedded
with the stage-1 backbone; the top-ranked N = 10% pairs of their cosine matrix are kept (Sec. 3.2).
Reference: ``Correspondence.forward_test`` (``openselfsup/models/correspondence.py``) and
``CorrespondenceDataset.evaluate`` (the ``*_instance_correspondence.json`` layout) in Jiahao000/ORL.
Boxes are xyxy in original-image pixels (see ``correlearn.mining.boxes``); the JSON stores xywh.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import torch
import torch.nn.functional as F
from torch import nn

from correlearn.mining.boxes import xywh_to_xyxy, xyxy_to_xywh

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

# Reference defaults written to the JSON "info" block (CorrespondenceDataset.evaluate).
REF_INFO = {
    "bbox_min_size": 96,
    "bbox_max_aspect_ratio": 3,
    "bbox_max_iou": 0.5,
    "intra_bbox_num": 100,
    "knn_image_num": 10,
    "knn_bbox_pair_ratio": 0.1,
}


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
    return _pairs_table(cols)


def _pairs_table(cols: dict[str, list[Any]]) -> pa.Table:
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


def _xywh_list(box: np.ndarray) -> list[int | float]:
    # The reference stores integer pixel boxes; keep ints where the value is whole.
    return [int(v) if v.is_integer() else v for v in xyxy_to_xywh(box).reshape(-1).tolist()]


def export_ref_json(
    table: pa.Table,
    path: str | os.PathLike,
    intra_boxes: Mapping[str, np.ndarray] | None = None,
    image_keys: Sequence[str] | None = None,
    info: Mapping[str, Any] | None = None,
) -> None:
    """Write pairs in the layout of the reference ``*_instance_correspondence.json``.

    Layout (from ``CorrespondenceDataset.evaluate`` / ``COCOORLJson`` in Jiahao000/ORL)::

        {"info": {bbox_min_size, bbox_max_aspect_ratio, bbox_max_iou, intra_bbox_num,
                  knn_image_num, knn_bbox_pair_ratio},
         "images": {"file_name": [N], "id": [N]},
         "pseudo_annotations": {
             "image_id": [N],
             "bbox": [N][B_i][x, y, w, h],                 # filtered RoIs (intra-RoI branch)
             "knn_image_id": [N][K],                        # positions in images.file_name
             "knn_bbox_pair": [N][K][P][qx, qy, qw, qh, nx, ny, nw, nh]}}

    Differences, all harmless to the reference reader: ``file_name`` holds our image keys and
    ``id`` / ``image_id`` are positions 0..N-1 (the reference has COCO ids there), and the extra
    list ``pseudo_annotations.knn_bbox_pair_score`` ``[N][K][P]`` keeps the scores the reference
    drops, so that :func:`import_ref_json` round-trips. Whole-number coordinates are written as
    ints.

    Args:
        table: Pairs as returned by :func:`mine_pairs`.
        path: Output JSON path.
        intra_boxes: Filtered xyxy RoIs per key for ``bbox``; without it, each image's distinct
            query boxes in ``table`` (first-appearance order) stand in.
        image_keys: Image order; default: query keys in table order, then neighbour-only keys.
        info: Overrides for the ``info`` block (defaults: ORL's settings, K = max neighbours).
    """
    keys = table.column("key").to_pylist()
    nbrs = table.column("nbr_key").to_pylist()
    ranks = table.column("nbr_rank").to_pylist()
    qb = table.column("q_box").combine_chunks().flatten().to_numpy().reshape(-1, 4)
    nb = table.column("n_box").combine_chunks().flatten().to_numpy().reshape(-1, 4)
    scores = table.column("score").to_pylist()
    order = list(image_keys) if image_keys is not None else list(dict.fromkeys(keys + nbrs))
    pos = {k: i for i, k in enumerate(order)}
    if len(pos) != len(order):
        # Two images under one key would silently share boxes, neighbours and pairs.
        dup = next(k for i, k in enumerate(order) if pos[k] != i)
        raise ValueError(f"image key {dup!r} appears twice in image_keys")
    groups: list[dict[int, dict[str, Any]]] = [{} for _ in order]
    for r, (k, nk, rank) in enumerate(zip(keys, nbrs, ranks, strict=True)):
        g = groups[pos[k]].setdefault(rank, {"nbr": pos[nk], "pairs": [], "scores": []})
        g["pairs"].append(_xywh_list(qb[r]) + _xywh_list(nb[r]))
        g["scores"].append(scores[r])
    bbox = []
    for i, k in enumerate(order):
        if intra_boxes is not None:
            src = np.asarray(intra_boxes.get(k, np.zeros((0, 4))), dtype=np.float64).reshape(-1, 4)
            bbox.append([_xywh_list(b) for b in src])
        else:
            seen = dict.fromkeys(tuple(p[:4]) for g in groups[i].values() for p in g["pairs"])
            bbox.append([list(b) for b in seen])
    ranked = [[g[r] for r in sorted(g)] for g in groups]
    data = {
        "info": {**REF_INFO, "knn_image_num": max((len(g) for g in ranked), default=0)},
        "images": {"file_name": order, "id": list(range(len(order)))},
        "pseudo_annotations": {
            "image_id": list(range(len(order))),
            "bbox": bbox,
            "knn_image_id": [[g["nbr"] for g in gs] for gs in ranked],
            "knn_bbox_pair": [[g["pairs"] for g in gs] for gs in ranked],
            "knn_bbox_pair_score": [[g["scores"] for g in gs] for gs in ranked],
        },
    }
    data["info"].update(info or {})
    with open(path, "w") as f:
        json.dump(data, f)


def import_ref_json(path: str | os.PathLike) -> pa.Table:
    """Read a reference-layout correspondence JSON (ours or the reference's) into a pairs table.

    Args:
        path: JSON written by :func:`export_ref_json` or by the reference
            ``tools/generate_correspondence.py``.

    Returns:
        Table with schema ``PAIRS_SCHEMA``; ``score`` is NaN where the file has no scores (reference
        files), ``nbr_rank`` is the position in ``knn_image_id``.
    """
    with open(path) as f:
        data = json.load(f)
    names = data["images"]["file_name"]
    ann = data["pseudo_annotations"]
    all_scores = ann.get("knn_bbox_pair_score")
    cols: dict[str, list[Any]] = {name: [] for name in PAIRS_SCHEMA.names}
    for i, (nbr_ids, pair_lists) in enumerate(
        zip(ann["knn_image_id"], ann["knn_bbox_pair"], strict=True)
    ):
        for rank, (j, pairs) in enumerate(zip(nbr_ids, pair_lists, strict=True)):
            p = np.asarray(pairs, dtype=np.float64).reshape(-1, 8)
            n = len(p)
            sc = all_scores[i][rank] if all_scores is not None else [np.nan] * n
            cols["key"] += [names[i]] * n
            cols["nbr_key"] += [names[j]] * n
            cols["nbr_rank"] += [rank] * n
            cols["q_box"].append(xywh_to_xyxy(p[:, :4]))
            cols["n_box"].append(xywh_to_xyxy(p[:, 4:]))
            cols["score"].append(np.asarray(sc, dtype=np.float32))
    return _pairs_table(cols)


def import_ref_intra_boxes(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read ``pseudo_annotations.bbox`` of a reference-layout JSON as xyxy boxes per file name.

    Args:
        path: Correspondence JSON in the reference layout.

    Returns:
        ``{file_name: (B_i, 4) float32}``: the filtered RoIs, i.e. the intra-RoI candidates of ORL
        stage 3.
    """
    with open(path) as f:
        data = json.load(f)
    names = data["images"]["file_name"]
    boxes = data["pseudo_annotations"]["bbox"]
    return {
        n: xywh_to_xyxy(np.asarray(b, dtype=np.float64)).astype(np.float32)
        for n, b in zip(names, boxes, strict=True)
    }
