import numpy as np
import pytest

from correlearn.mining.knn import drop_self, ivf_recall_at_k, knn_search, torch_knn


def _emb(n=400, d=32, seed=0):
    x = np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _brute(emb, k):
    sim = emb @ emb.T
    np.fill_diagonal(sim, -np.inf)
    ids = np.argsort(-sim, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(sim, ids, axis=1), ids


def test_flat_matches_numpy_brute_force_self_excluded():
    emb = _emb()
    scores, ids = knn_search(emb, k=10, use_gpu=False)
    ref_s, ref_i = _brute(emb, 10)
    assert ids.shape == (400, 10) and ids.dtype == np.int64
    assert np.array_equal(ids, ref_i)
    assert np.allclose(scores, ref_s, atol=1e-5)
    assert not (ids == np.arange(400)[:, None]).any()
    assert np.all(np.diff(scores, axis=1) <= 1e-6)


def test_torch_baseline_matches():
    emb = _emb(seed=1)
    s1, i1 = knn_search(emb, k=5, use_gpu=False)
    s2, i2 = torch_knn(emb, k=5, batch_size=128, device="cpu")
    assert np.array_equal(i1, i2) and np.allclose(s1, s2, atol=1e-5)


def test_keep_self_when_not_excluded():
    emb = _emb(n=50)
    _, ids = knn_search(emb, k=3, exclude_self=False, use_gpu=False)
    assert np.array_equal(ids[:, 0], np.arange(50))


def test_duplicates_drop_self_by_id_not_position():
    # Query 0's duplicate (id 5) may rank ahead of it; dropping column 0 would remove the duplicate.
    scores = np.array([[1.0, 1.0, 0.5, 0.25]], dtype=np.float32)
    ids = np.array([[5, 0, 3, 2]])
    s, i = drop_self(scores, ids, np.array([0]), k=3)
    assert i.tolist() == [[5, 3, 2]] and s.tolist() == [[1.0, 0.5, 0.25]]
    # Self missing from the retrieved list: the last one is dropped.
    s, i = drop_self(scores, np.array([[5, 6, 3, 2]]), np.array([0]), k=3)
    assert i.tolist() == [[5, 6, 3]]


def test_exact_duplicate_vectors_keep_each_other():
    emb = _emb(n=100, seed=2)
    emb[7] = emb[3]
    _, ids = knn_search(emb, k=4, use_gpu=False)
    assert ids[3, 0] == 7 and ids[7, 0] == 3
    assert 3 not in ids[3] and 7 not in ids[7]


def test_tiny_collection():
    _, ids = knn_search(_emb(n=4), k=10, use_gpu=False)
    assert ids.shape == (4, 3)
    assert all(sorted(row) == sorted(set(range(4)) - {q}) for q, row in enumerate(ids.tolist()))


def test_ivf_recall_bounds_and_full_probe():
    emb = _emb(n=2000, d=16, seed=3)
    full = ivf_recall_at_k(emb, k=10, nlist=16, nprobe=16, sample=200, use_gpu=False)
    low = ivf_recall_at_k(emb, k=10, nlist=16, nprobe=1, sample=200, use_gpu=False)
    assert 0.0 <= low <= full <= 1.0
    assert full > 0.99
    _, ids = knn_search(emb, k=10, index="ivf", ivf_nlist=16, nprobe=16, use_gpu=False)
    assert np.array_equal(ids, knn_search(emb, k=10, use_gpu=False)[1])


def test_use_gpu_true_without_gpu_raises():
    import faiss

    if faiss.get_num_gpus() > 0:
        pytest.skip("a GPU is present")
    with pytest.raises(RuntimeError):
        knn_search(_emb(n=10), k=2, use_gpu=True)
