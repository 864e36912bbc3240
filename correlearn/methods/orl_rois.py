"""ORL stage-3 sampling inputs (Xie et al. 2021, Sec. 3.1-3.2): stored RoI pairs and RoI patches.

:class:`RoIPairIndex` groups the inter-RoI pairs that stage 2 stores (``pairs.parquet``) by image
and neighbour, so stage 3 draws a random kNN neighbour and then a random stored pair between the
two images (Sec. 3.1 "Stage 3"). :func:`roi_patch` crops an RoI, resizes it to the 96 px that take
"the place of the random resized crop" and gives it a global view's flip and colour augmentations
(Sec. 3.2 "Image augmentations"). :func:`correlearn.methods.orl.build_orl_batch` uses both.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import torch
import torchvision.transforms.v2.functional as TF
from torchvision.transforms import InterpolationMode

from correlearn.data.augment import ViewAug, hflip, photometric


class RoIPairIndex:
    """Stored inter-RoI pairs (ORL Sec. 3.1 Stage 2 (iii)), grouped by (image, neighbour rank).

    Args:
        table: a ``pairs.parquet`` table (``key, nbr_key, nbr_rank, q_box, n_box, score``).
        keys: image keys; positions in it are the image ids used by :meth:`sample`.
        knn_k: use only the first ``knn_k`` stored neighbours (reference ``topk_knn_image``).
    """

    def __init__(self, table: pa.Table, keys: Sequence[str], knn_k: int | None = None):
        pos = {k: i for i, k in enumerate(keys)}
        img = np.array([pos[k] for k in table.column("key").to_pylist()], dtype=np.int64)
        nbr = np.array([pos[k] for k in table.column("nbr_key").to_pylist()], dtype=np.int64)
        rank = table.column("nbr_rank").to_numpy().astype(np.int64)
        q = table.column("q_box").combine_chunks().flatten().to_numpy().reshape(-1, 4)
        n = table.column("n_box").combine_chunks().flatten().to_numpy().reshape(-1, 4)
        keep = rank < knn_k if knn_k is not None else np.ones(len(rank), bool)
        order = np.lexsort((rank[keep], img[keep]))
        img, rank = img[keep][order], rank[keep][order]
        self.nbr, self.q_boxes, self.n_boxes = nbr[keep][order], q[keep][order], n[keep][order]
        new = np.ones(len(img), bool)
        new[1:] = (img[1:] != img[:-1]) | (rank[1:] != rank[:-1])
        starts = np.flatnonzero(new)
        self.row_start = np.append(starts, len(img))
        self.image_group = np.searchsorted(img[starts], np.arange(len(keys) + 1))

    def num_neighbours(self, i: int) -> int:
        """Neighbours of image ``i`` with at least one stored pair."""
        return int(self.image_group[i + 1] - self.image_group[i])

    def sample(self, i: int, rng: np.random.Generator) -> tuple[int, np.ndarray, np.ndarray] | None:
        """A random neighbour of image ``i``, then a random stored pair (ORL Sec. 3.1 Stage 3).

        Returns:
            ``(neighbour position, (4,) query box, (4,) neighbour box)`` (xyxy), or None when image
            ``i`` has no stored pair.
        """
        g0, g1 = self.image_group[i], self.image_group[i + 1]
        if g0 == g1:
            return None
        g = g0 + int(rng.integers(g1 - g0))
        r = self.row_start[g] + int(rng.integers(self.row_start[g + 1] - self.row_start[g]))
        return int(self.nbr[r]), self.q_boxes[r], self.n_boxes[r]


def roi_patch(
    img: torch.Tensor, box: np.ndarray, size: int, aug: ViewAug, rng: np.random.Generator
) -> torch.Tensor:
    """Crop an RoI, resize it to ``size`` and augment it as a global view (ORL Sec. 3.2).

    Args:
        img: (3, H, W) uint8 image.
        box: (4,) xyxy box in image pixels (rounded and clipped, at least 1 px).
        size: output side R.
        aug: flip and colour parameters (the random-resized crop fields are unused).
        rng: the random generator.

    Returns:
        (3, R, R) uint8 patch.
    """
    h, w = img.shape[-2:]
    x1, y1, x2, y2 = np.round(np.asarray(box, dtype=np.float64)).astype(int).tolist()
    x1, y1 = min(max(x1, 0), w - 1), min(max(y1, 0), h - 1)
    x2, y2 = min(max(x2, x1 + 1), w), min(max(y2, y1 + 1), h)
    x = TF.resized_crop(
        img, y1, x1, y2 - y1, x2 - x1, [size, size], InterpolationMode.BILINEAR, antialias=True
    )
    return photometric(hflip(x, aug.flip_p, rng), rng, aug)
