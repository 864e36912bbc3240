"""ORL stage 2 (correspondence discovery): pure library code.

Submodules: ``boxes`` (box ops, ORL's RoI filter), ``proposals`` (selective search),
``box_shards`` (filtered RoIs per input shard, the ``proposals`` artifact), ``embeddings`` (image
embeddings per shard), ``shard_units`` (the per-shard units of those two stages), ``knn`` (FAISS
image kNN), ``neighbour_table`` (the ``knn.parquet`` layout), ``correspondence`` (RoI-pair
retrieval), ``ref_json`` (the reference correspondence JSON). Box arithmetic and ORL's stage-3 RoI jitter sit
below it, in :mod:`correlearn.data.box_ops` and :mod:`correlearn.data.box_jitter`. Only the
numpy-only filter is re-exported here, so that the spawned selective-search workers, which import
this package, do not pay for torch.
"""

from correlearn.mining.boxes import orl_filter

__all__ = ["orl_filter"]
