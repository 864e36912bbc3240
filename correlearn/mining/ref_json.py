"""RoI pairs in the layout of ORL's ``*_instance_correspondence.json``, both ways.

Reference: ``CorrespondenceDataset.evaluate`` / ``COCOORLJson`` in Jiahao000/ORL. Layout::

    {"info": {bbox_min_size, bbox_max_aspect_ratio, bbox_max_iou, intra_bbox_num,
              knn_image_num, knn_bbox_pair_ratio},
     "images": {"file_name": [N], "id": [N]},
     "pseudo_annotations": {
         "image_id": [N],
         "bbox": [N][B_i][x, y, w, h],                 # filtered RoIs (intra-RoI branch)
         "knn_image_id": [N][K],                        # positions in images.file_name
         "knn_bbox_pair": [N][K][P][qx, qy, qw, qh, nx, ny, nw, nh]}}

Boxes are xyxy in our tables (:mod:`correlearn.mining.boxes`) and xywh in the JSON; the pairs table
is :data:`~correlearn.mining.correspondence.PAIRS_SCHEMA`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from correlearn.data.box_ops import xywh_to_xyxy, xyxy_to_xywh
from correlearn.mining.correspondence import PAIRS_SCHEMA, pairs_table

# Reference defaults written to the JSON "info" block (CorrespondenceDataset.evaluate).
REF_INFO = {
    "bbox_min_size": 96,
    "bbox_max_aspect_ratio": 3,
    "bbox_max_iou": 0.5,
    "intra_bbox_num": 100,
    "knn_image_num": 10,
    "knn_bbox_pair_ratio": 0.1,
}

# One image's pairs: neighbour rank -> {"nbr": position, "pairs": [[8 numbers]], "scores": [P]}.
Groups = list[dict[int, dict[str, Any]]]


def _xywh_list(box: np.ndarray) -> list[int | float]:
    # The reference stores integer pixel boxes; keep ints where the value is whole.
    return [int(v) if v.is_integer() else v for v in xyxy_to_xywh(box).reshape(-1).tolist()]


def _image_order(table: pa.Table, image_keys: Sequence[str] | None) -> dict[str, int]:
    """Key -> position in ``images.file_name`` (default: query keys, then neighbour-only keys)."""
    keys = table.column("key").to_pylist()
    order = (
        list(image_keys)
        if image_keys is not None
        else list(dict.fromkeys(keys + table.column("nbr_key").to_pylist()))
    )
    pos = {k: i for i, k in enumerate(order)}
    if len(pos) != len(order):
        # Two images under one key would silently share boxes, neighbours and pairs.
        dup = next(k for i, k in enumerate(order) if pos[k] != i)
        raise ValueError(f"image key {dup!r} appears twice in image_keys")
    return pos


def _group_pairs(table: pa.Table, pos: dict[str, int]) -> Groups:
    """The table's rows grouped per image position, then per neighbour rank."""
    qb = table.column("q_box").combine_chunks().flatten().to_numpy().reshape(-1, 4)
    nb = table.column("n_box").combine_chunks().flatten().to_numpy().reshape(-1, 4)
    scores = table.column("score").to_pylist()
    columns = (table.column(c).to_pylist() for c in ("key", "nbr_key", "nbr_rank"))
    groups: Groups = [{} for _ in pos]
    for r, (k, nk, rank) in enumerate(zip(*columns, strict=True)):
        g = groups[pos[k]].setdefault(rank, {"nbr": pos[nk], "pairs": [], "scores": []})
        g["pairs"].append(_xywh_list(qb[r]) + _xywh_list(nb[r]))
        g["scores"].append(scores[r])
    return groups


def _intra_bbox(
    order: list[str], groups: Groups, intra_boxes: Mapping[str, np.ndarray] | None
) -> list[list[list[int | float]]]:
    """``pseudo_annotations.bbox``: the given RoIs, else each image's distinct query boxes."""
    bbox = []
    for i, k in enumerate(order):
        if intra_boxes is not None:
            src = np.asarray(intra_boxes.get(k, np.zeros((0, 4))), dtype=np.float64).reshape(-1, 4)
            bbox.append([_xywh_list(b) for b in src])
        else:
            seen = dict.fromkeys(tuple(p[:4]) for g in groups[i].values() for p in g["pairs"])
            bbox.append([list(b) for b in seen])
    return bbox


def export_ref_json(
    table: pa.Table,
    path: str | os.PathLike,
    intra_boxes: Mapping[str, np.ndarray] | None = None,
    image_keys: Sequence[str] | None = None,
    info: Mapping[str, Any] | None = None,
) -> None:
    """Write pairs in the reference layout (module docstring).

    Differences, all harmless to the reference reader: ``file_name`` holds our image keys and
    ``id`` / ``image_id`` are positions 0..N-1 (the reference has COCO ids there), and the extra
    list ``pseudo_annotations.knn_bbox_pair_score`` ``[N][K][P]`` keeps the scores the reference
    drops, so that :func:`import_ref_json` round-trips. Whole-number coordinates are written as
    ints.

    Args:
        table: Pairs as returned by :func:`~correlearn.mining.correspondence.mine_pairs`.
        path: Output JSON path.
        intra_boxes: Filtered xyxy RoIs per key for ``bbox``; without it, each image's distinct
            query boxes in ``table`` (first-appearance order) stand in.
        image_keys: Image order; default: query keys in table order, then neighbour-only keys.
        info: Overrides for the ``info`` block (defaults: ORL's settings, K = max neighbours).
    """
    pos = _image_order(table, image_keys)
    order = list(pos)
    groups = _group_pairs(table, pos)
    ranked = [[g[r] for r in sorted(g)] for g in groups]
    data = {
        "info": {**REF_INFO, "knn_image_num": max((len(g) for g in ranked), default=0)},
        "images": {"file_name": order, "id": list(range(len(order)))},
        "pseudo_annotations": {
            "image_id": list(range(len(order))),
            "bbox": _intra_bbox(order, groups, intra_boxes),
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
    return pairs_table(cols)


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
