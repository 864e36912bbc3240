"""ORL stage 2 (correspondence discovery) and its box jitter: pure library code.

Submodules: ``boxes`` (box ops, ORL's RoI filter), ``proposals`` (selective search), ``knn``
(FAISS image kNN), ``correspondence`` (RoI-pair retrieval, reference JSON), ``jitter`` (stage-3
intra-RoI jitter). Only the numpy-only helpers are re-exported here, so that the spawned
selective-search workers, which import this package, do not pay for torch.
"""

from correlearn.mining.boxes import iou_matrix, orl_filter, xywh_to_xyxy, xyxy_to_xywh
from correlearn.mining.jitter import jitter_box

__all__ = ["iou_matrix", "jitter_box", "orl_filter", "xywh_to_xyxy", "xyxy_to_xywh"]
