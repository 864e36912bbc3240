"""Pictures of ORL's mining: query images with their kNN neighbours, and RoI pairs (ORL Fig. 3)."""

from __future__ import annotations

import cv2
import numpy as np

from correlearn.data.readers import ShardedImages


def label(img: np.ndarray, text: str, org: tuple[int, int] = (4, 15)) -> np.ndarray:
    """Write ``text`` in place on an RGB uint8 image, yellow on a black outline (any background)."""
    for colour, thick in (((0, 0, 0), 3), ((255, 255, 0), 1)):
        cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, 0.45, colour, thick, cv2.LINE_AA)
    return img


def _thumb(img: np.ndarray, height: int, text: str) -> np.ndarray:
    h, w = img.shape[:2]
    t = cv2.resize(img, (max(1, round(w * height / h)), height), interpolation=cv2.INTER_AREA)
    return label(np.ascontiguousarray(t), text)


def neighbour_grid(
    images: ShardedImages, ids: np.ndarray, scores: np.ndarray, queries: np.ndarray, height=96
) -> np.ndarray:
    """Rows of (query, its neighbours), neighbours labelled with their cosine: (H, W, 3) uint8."""
    rows = []
    for q in queries.tolist():
        tiles = [_thumb(images[q]["image"], height, "query")]
        tiles += [
            _thumb(images[int(j)]["image"], height, f"{s:.2f}")
            for j, s in zip(ids[q], scores[q], strict=True)
            if j >= 0
        ]
        rows.append(np.concatenate([np.pad(t, ((2, 2), (2, 2), (0, 0))) for t in tiles], 1))
    width = max(r.shape[1] for r in rows)
    return np.concatenate([np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0))) for r in rows])


def pair_picture(images: ShardedImages, table, n: int, height: int = 160) -> np.ndarray | None:
    """Best pair of the ``n`` best-matching image pairs: query | neighbour, boxes drawn (ORL Fig. 3).

    Returns:
        (H, W, 3) uint8 RGB, or None without pairs.
    """
    if table.num_rows == 0 or n == 0:
        return None
    keys, nbrs = table.column("key").to_pylist(), table.column("nbr_key").to_pylist()
    picked: dict[frozenset, int] = {}  # one row per unordered image pair: A->B and B->A look alike
    for r in np.argsort(-table.column("score").to_numpy(), kind="stable").tolist():
        picked.setdefault(frozenset((keys[r], nbrs[r])), r)
        if len(picked) == n:
            break
    rows = table.take(list(picked.values())).to_pylist()
    lines = []
    for r in rows:
        tiles = []
        for key, box, colour in (
            (r["key"], r["q_box"], (0, 255, 0)),
            (r["nbr_key"], r["n_box"], (255, 0, 255)),
        ):
            img = np.ascontiguousarray(images[images.position(key)]["image"])
            s = height / img.shape[0]
            img = np.ascontiguousarray(cv2.resize(img, (max(1, round(img.shape[1] * s)), height)))
            x1, y1, x2, y2 = (round(v * s) for v in box)
            cv2.rectangle(img, (x1, y1), (x2 - 1, y2 - 1), colour, 2)
            tiles.append(np.pad(img, ((2, 2), (2, 2), (0, 0))))
        label(tiles[0], f"{r['score']:.3f}", (8, 20))
        lines.append(np.concatenate(tiles, axis=1))
    width = max(x.shape[1] for x in lines)
    return np.concatenate([np.pad(x, ((0, 0), (0, width - x.shape[1]), (0, 0))) for x in lines])
