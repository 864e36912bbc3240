"""Image-level k-nearest-neighbour retrieval for ORL stage 2 (ORL paper Sec. 3.1 step (i)).

Every image is a query against the whole collection; neighbours are ranked by cosine similarity of
L2-normalised embeddings, i.e. inner product, and the query itself is excluded (K = 10 in Sec. 3.2).
The reference notebook (``tools/coco_knn_image_retrieval.ipynb``) computes ``torch.mm`` +
``topk(K+1)`` and drops column 0, assuming the query is its own first neighbour; with duplicate
images that drops the wrong column, so here the query is dropped by id.

Exact search uses FAISS ``IndexFlatIP`` (on GPU when faiss-gpu sees one); ``IndexIVFFlat`` is the
option for collections past a few million images, where the exact N x N product gets too slow;
:func:`ivf_recall_at_k` measures what that costs in recall.
"""

from __future__ import annotations

import math
from typing import Literal

import faiss
import numpy as np

IndexKind = Literal["flat", "ivf", "auto"]

AUTO_IVF_MIN_N = 2_000_000


def _as_f32(emb: np.ndarray) -> np.ndarray:
    emb = np.ascontiguousarray(np.asarray(emb, dtype=np.float32))
    if emb.ndim != 2:
        raise ValueError(f"expected (N, D) embeddings, got shape {emb.shape}")
    return emb


def drop_self(
    scores: np.ndarray, ids: np.ndarray, query_ids: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Remove each query's own id from its ``k + 1`` retrieved neighbours.

    Dropping by id (not by column 0) keeps an exact duplicate of the query that happens to rank
    first. When the query is not among the retrieved (a duplicate tie pushed it out, or IVF missed
    it), the last neighbour is dropped instead.

    Args:
        scores: ``(Q, k + 1)`` similarities, best first.
        ids: ``(Q, k + 1)`` int64 neighbour ids.
        query_ids: ``(Q,)`` the id of each query in the collection.
        k: Neighbours to keep.

    Returns:
        ``(Q, k)`` scores and ``(Q, k)`` ids.
    """
    is_self = ids == np.asarray(query_ids)[:, None]
    first_self = np.where(is_self.any(axis=1), is_self.argmax(axis=1), ids.shape[1] - 1)
    keep = np.ones_like(is_self)
    keep[np.arange(len(ids)), first_self] = False
    q = len(ids)
    return scores[keep].reshape(q, -1)[:, :k], ids[keep].reshape(q, -1)[:, :k]


def _want_gpu(use_gpu: bool | Literal["auto"]) -> bool:
    n = faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") else 0
    if use_gpu == "auto":
        return n > 0
    if use_gpu and n == 0:
        raise RuntimeError("use_gpu=True but FAISS sees no GPU (is faiss-gpu installed?)")
    return bool(use_gpu)


def default_nlist(n: int) -> int:
    """IVF cell count heuristic: ``4 * sqrt(N)``, at least 1 (the usual FAISS guideline)."""
    return max(1, int(4 * math.sqrt(n)))


def build_index(
    emb: np.ndarray,
    index: Literal["flat", "ivf"] = "flat",
    use_gpu: bool | Literal["auto"] = "auto",
    ivf_nlist: int | None = None,
    nprobe: int = 32,
    train_size: int | None = None,
    seed: int = 0,
) -> faiss.Index:
    """Build an inner-product FAISS index holding ``emb``.

    Args:
        emb: ``(N, D)`` float32 L2-normalised embeddings.
        index: ``"flat"`` (exact ``IndexFlatIP``) or ``"ivf"`` (``IndexIVFFlat``, inner product).
        use_gpu: ``"auto"`` moves the index to GPU 0 when ``faiss.get_num_gpus() > 0``.
        ivf_nlist: IVF cells; ``None`` uses :func:`default_nlist`.
        nprobe: IVF cells visited per query (capped at ``nlist``).
        train_size: IVF k-means training sample; ``None`` uses ``64 * nlist`` (capped at N).
        seed: Seed of the training sample.

    Returns:
        The populated index.
    """
    emb = _as_f32(emb)
    n, d = emb.shape
    if index == "flat":
        idx: faiss.Index = faiss.IndexFlatIP(d)
    elif index == "ivf":
        nlist = min(ivf_nlist or default_nlist(n), n)
        quantizer = faiss.IndexFlatIP(d)
        idx = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
        m = min(n, train_size or 64 * nlist)
        sample = np.random.default_rng(seed).choice(n, size=m, replace=False)
        idx.train(emb[np.sort(sample)])
        idx.nprobe = min(nprobe, nlist)  # faiss' constructor wrapper keeps `quantizer` alive
    else:
        raise ValueError(f"index must be 'flat' or 'ivf', got {index!r}")
    if _want_gpu(use_gpu):
        res = faiss.StandardGpuResources()
        idx = faiss.index_cpu_to_gpu(res, 0, idx)
        # The GPU resources must outlive the index; FAISS' own hook for that is this list.
        idx.referenced_objects = [*getattr(idx, "referenced_objects", []), res]
    idx.add(emb)
    return idx


def knn_search(
    emb: np.ndarray,
    k: int = 10,
    exclude_self: bool = True,
    index: IndexKind = "flat",
    use_gpu: bool | Literal["auto"] = "auto",
    ivf_nlist: int | None = None,
    nprobe: int = 32,
    batch_size: int = 65536,
) -> tuple[np.ndarray, np.ndarray]:
    """All-vs-all cosine kNN of a collection (ORL Sec. 3.1 (i), K = 10 in Sec. 3.2).

    Args:
        emb: ``(N, D)`` float32 L2-normalised embeddings (cosine == inner product).
        k: Neighbours per image.
        exclude_self: Drop each image from its own list (by id, see :func:`drop_self`).
        index: ``"flat"`` exact search, ``"ivf"`` approximate, ``"auto"`` IVF from
            ``AUTO_IVF_MIN_N`` images on.
        use_gpu: See :func:`build_index`.
        ivf_nlist: See :func:`build_index`.
        nprobe: See :func:`build_index`.
        batch_size: Queries per FAISS call (bounds the result buffers).

    Returns:
        ``(N, k)`` float32 cosine scores (best first) and ``(N, k)`` int64 neighbour ids; ids are
        ``-1`` (score ``-inf``-like) only when IVF finds fewer than ``k`` candidates.
    """
    emb = _as_f32(emb)
    n = len(emb)
    kind = ("ivf" if n >= AUTO_IVF_MIN_N else "flat") if index == "auto" else index
    kk = min(k + int(exclude_self), n)
    idx = build_index(emb, kind, use_gpu=use_gpu, ivf_nlist=ivf_nlist, nprobe=nprobe)
    width = min(k, kk - int(exclude_self))  # fewer than k other images in tiny collections
    scores = np.empty((n, width), dtype=np.float32)
    ids = np.empty((n, width), dtype=np.int64)
    for s in range(0, n, batch_size):
        e = min(n, s + batch_size)
        d_, i_ = idx.search(emb[s:e], kk)
        if exclude_self:
            d_, i_ = drop_self(d_, i_, np.arange(s, e), k)
        scores[s:e], ids[s:e] = d_[:, :width], i_[:, :width]
    return scores, ids


def ivf_recall_at_k(
    emb: np.ndarray,
    k: int = 10,
    nlist: int | None = None,
    nprobe: int = 32,
    sample: int = 1000,
    seed: int = 0,
    use_gpu: bool | Literal["auto"] = "auto",
) -> float:
    """Recall@k of IVF search against exact search, on a sample of queries.

    Args:
        emb: ``(N, D)`` float32 L2-normalised embeddings.
        k: Neighbours compared (self excluded in both searches).
        nlist: IVF cells; ``None`` uses :func:`default_nlist`.
        nprobe: IVF cells visited per query.
        sample: Queries drawn without replacement from the collection.
        seed: Seed of the query sample (and of the IVF training sample).
        use_gpu: See :func:`build_index`.

    Returns:
        Mean over sampled queries of ``|IVF top-k ∩ exact top-k| / k``, in ``[0, 1]``.
    """
    emb = _as_f32(emb)
    n = len(emb)
    q = np.sort(np.random.default_rng(seed).choice(n, size=min(sample, n), replace=False))
    kk = min(k + 1, n)
    exact = build_index(emb, "flat", use_gpu=use_gpu)
    approx = build_index(emb, "ivf", use_gpu=use_gpu, ivf_nlist=nlist, nprobe=nprobe, seed=seed)
    _, ie = drop_self(*exact.search(emb[q], kk), q, k)
    _, ia = drop_self(*approx.search(emb[q], kk), q, k)
    hits = [len(set(a[a >= 0]) & set(e)) for a, e in zip(ia, ie, strict=True)]
    return float(np.sum(hits) / ie.size) if ie.size else float("nan")


def torch_knn(
    emb: np.ndarray,
    k: int = 10,
    exclude_self: bool = True,
    batch_size: int = 4096,
    device: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The reference's ``torch.mm`` + ``topk`` kNN (baseline for ``bench/mining.py``).

    Args:
        emb: ``(N, D)`` float32 L2-normalised embeddings.
        k: Neighbours per image.
        exclude_self: Drop each image from its own list (by id).
        batch_size: Queries per matrix product.
        device: Torch device; ``None`` is CUDA when available, else CPU.

    Returns:
        ``(N, k)`` float32 scores and ``(N, k)`` int64 ids, as :func:`knn_search`.
    """
    import torch

    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    bank = torch.from_numpy(_as_f32(emb)).to(dev)
    n = len(bank)
    kk = min(k + int(exclude_self), n)
    out_s, out_i = [], []
    with torch.inference_mode():
        for s in range(0, n, batch_size):
            sim = bank[s : s + batch_size] @ bank.T
            v, i = sim.topk(kk, dim=1)
            v, i = v.cpu().numpy(), i.cpu().numpy()
            if exclude_self:
                v, i = drop_self(v, i, np.arange(s, s + len(v)), k)
            out_s.append(v[:, :k])
            out_i.append(i[:, :k])
    return np.concatenate(out_s), np.concatenate(out_i).astype(np.int64)
