"""The ``knn.parquet`` file of a ``knn`` artifact: writing it, and reading it back as ids.

One row per image, in the order of the embeddings: ``key``, ``nbr_keys`` (its top-K neighbours'
keys, best first, self excluded), ``nbr_ids`` (their rows), ``scores`` (their cosines). The
``correspondence`` stage reads the neighbour lists back as an ``(N, K)`` id matrix
(:func:`read_neighbour_ids`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

KNN = "knn.parquet"


def neighbour_table(keys: Sequence[str], scores: np.ndarray, ids: np.ndarray) -> pa.Table:
    """The table of :data:`KNN` from a search's result (``-1`` ids, missing neighbours, dropped).

    Args:
        keys: ``N`` image keys, the rows of the searched embeddings.
        scores: ``(N, K)`` cosine similarities, descending per row.
        ids: ``(N, K)`` neighbour rows (``-1`` where the index found fewer than K).
    """
    karr = np.asarray(keys, dtype=object)
    return pa.table(
        {
            "key": pa.array(keys, pa.string()),
            "nbr_keys": pa.array([karr[r[r >= 0]].tolist() for r in ids], pa.list_(pa.string())),
            "nbr_ids": pa.array([r[r >= 0].tolist() for r in ids], pa.list_(pa.int64())),
            "scores": pa.array(
                [s[r >= 0].tolist() for s, r in zip(scores, ids, strict=True)],
                pa.list_(pa.float32()),
            ),
        }
    )


def read_neighbour_ids(knn_dir: str | Path, keys: Sequence[str], k: int | None) -> np.ndarray:
    """The neighbours of a ``knn`` artifact as rows of ``keys`` (the images of another stage).

    Args:
        knn_dir: the ``knn`` artifact.
        keys: ``N`` image keys; neighbours are looked up by key, so the order may differ from the
            artifact's.
        k: use the first ``k`` stored neighbours (None: all).

    Returns:
        ``(N, K)`` int64 rows into ``keys``, ``-1`` where an image has fewer neighbours.
    """
    table = pq.read_table(Path(knn_dir) / KNN)
    pos = {key: i for i, key in enumerate(keys)}
    rows = dict(
        zip(table.column("key").to_pylist(), table.column("nbr_keys").to_pylist(), strict=True)
    )
    width = max((len(v) for v in rows.values()), default=0)
    width = min(width, k) if k is not None else width
    ids = np.full((len(keys), width), -1, dtype=np.int64)
    for i, key in enumerate(keys):
        nbrs = [pos[n] for n in rows.get(key, [])][:width]
        ids[i, : len(nbrs)] = nbrs
    return ids
