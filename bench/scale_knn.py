"""The kNN jobs of ``bench/scale.py``: exact vs IVF all-vs-all, batch queries, FAISS vs torch.mm.

Vectors are a seeded Gaussian mixture on the unit sphere (:func:`mixture`: one random unit centre
per 100 vectors, so clusters keep their size as N grows; isotropic noise of norm 1 to 2 times the
centre's; L2-normalised), so that neighbours mean something and IVF's cells follow the clusters as
with real embeddings (uniform random vectors are IVF's worst case: see ``bench/mining.py``). All
searches are the library's: ``knn_search`` (what the ``neighbours`` stage runs, ``index`` flat or ivf:
nlist 4 sqrt N, nprobe 32, K = 10, self excluded), ``torch_knn`` (the reference's ``torch.mm`` +
``topk``), and ``build_index`` + ``drop_self`` for the batch-query workload, whose recall is
computed as ``ivf_recall_at_k`` does (same query draw, same self-exclusion) but from the two
indexes that are also timed.
"""

from __future__ import annotations

import time

import numpy as np
from scale_harness import Point, Row, in_child, load_line

K = 10
DIM = 256
#: IVF cells probed in the batch workload: the library's default first, then more.
NPROBES = (32, 128, 512)


def mixture(n: int, d: int = DIM, per_cluster: int = 100, seed: int = 0) -> np.ndarray:
    """``(n, d)`` float32 unit rows from a Gaussian mixture (generated in chunks: ~1x memory).

    Args:
        n: vectors.
        d: dimension.
        per_cluster: vectors per mixture component (random unit centres, equal weights).
        seed: the generator's seed; the rows depend on ``(n, d, per_cluster, seed)`` only.

    Returns:
        The vectors.
    """
    rng = np.random.default_rng(seed)
    clusters = max(1, n // per_cluster)
    centres = rng.standard_normal((clusters, d), dtype=np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    spread = (rng.uniform(1.0, 2.0, clusters) / np.sqrt(d)).astype(np.float32)
    labels = rng.integers(0, clusters, n)
    out = np.empty((n, d), dtype=np.float32)
    for s in range(0, n, 1 << 16):
        lab = labels[s : s + (1 << 16)]
        x = centres[lab] + spread[lab, None] * rng.standard_normal((len(lab), d), dtype=np.float32)
        out[s : s + len(lab)] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def all_pairs_job(n: int, kind: str):
    """All-vs-all kNN of ``n`` mixture vectors: ``knn_search`` flat / ivf, or ``torch_knn``."""
    from correlearn.mining.knn import knn_search, torch_knn

    emb = mixture(n)
    if kind == "torch":
        return lambda: torch_knn(emb, K, device="cpu")
    return lambda: knn_search(emb, K, index=kind, use_gpu=False)


def _timed(fn, *args):
    t0 = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t0


def batch_job(n: int, queries: int):
    """Build a flat and an IVF index of ``n`` vectors, search ``queries`` of them in each.

    The timed callable returns the build and search seconds of each index, and the IVF recall@10
    against the exact search on those queries at each of :data:`NPROBES` (32 is the library's
    default, the one in ``ivf_search`` and ``recall``).
    """
    from correlearn.mining.knn import build_index, drop_self

    emb = mixture(n)
    # The query draw of ivf_recall_at_k (seed 0).
    q = np.sort(np.random.default_rng(0).choice(n, size=min(queries, n), replace=False))

    def timed() -> dict:
        res = {"queries": len(q), "probes": {}}
        idx, res["flat_build"] = _timed(build_index, emb, "flat", False)
        (d_, i_), res["flat_search"] = _timed(idx.search, emb[q], K + 1)
        exact = drop_self(d_, i_, q, K)[1]
        del idx
        idx, res["ivf_build"] = _timed(build_index, emb, "ivf", False)
        for probes in NPROBES:
            idx.nprobe = min(probes, idx.nlist)
            (d_, i_), sec = _timed(idx.search, emb[q], K + 1)
            res["probes"][probes] = (recall(drop_self(d_, i_, q, K)[1], exact), sec)
        res["recall"], res["ivf_search"] = res["probes"][NPROBES[0]]
        return res

    return timed


def recall(approx: np.ndarray, exact: np.ndarray) -> float:
    """Mean of ``|approx row ∩ exact row| / k`` (ids ``-1`` never match)."""
    hits = (approx[:, :, None] == exact[:, None, :]).any(axis=2) & (approx >= 0)
    return float(hits.sum() / exact.size)


def crossover(ns: list[int], exact: list[float], ivf: list[float]) -> str:
    """Where IVF all-vs-all becomes faster than exact, log-log interpolated (or extrapolated)."""
    ln, ld = np.log(ns), np.log(ivf) - np.log(exact)  # ld < 0: IVF faster
    for i in range(len(ns) - 1):
        if ld[i] >= 0 > ld[i + 1]:
            x = ln[i] + ld[i] * (ln[i + 1] - ln[i]) / (ld[i] - ld[i + 1])
            return f"N ~ {np.exp(x):,.0f} (interpolated between {ns[i]:,} and {ns[i + 1]:,})"
    if ld[0] < 0:
        return f"below {ns[0]:,} (IVF already faster at every measured size)"
    slope = (ld[-1] - ld[-2]) / (ln[-1] - ln[-2])
    if slope >= 0:
        return "not in sight (IVF's lead does not grow with N at these sizes)"
    x = ln[-1] - ld[-1] / slope
    return f"N ~ {np.exp(x):,.0f} (extrapolated from the two largest sizes)"


def compare(flat: tuple, torch_res: tuple) -> str:
    """FAISS flat vs torch.mm neighbour ids: identical share, and whether the rest are ties."""
    (sf, idf), (st, idt) = flat, torch_res
    same = idf == idt
    diff = float(np.abs(sf[~same] - st[~same]).max()) if (~same).any() else 0.0
    return (
        f"ids identical at {same.mean() * 100:.3f}% of positions, {same.all(axis=1).mean() * 100:.2f}%"
        f" of rows; where they differ the scores differ by at most {diff:.1e} (float ties"
        f"{'' if diff <= 1e-5 else ': NOT all within 1e-5'}); max |score diff| overall "
        f"{float(np.abs(sf - st).max()):.1e}"
    )


def _exact_and_ivf(ns: list[int], threads: int) -> tuple[list[Point], list[Point], list[float]]:
    flat = [in_child(all_pairs_job, n, "flat", threads=threads) for n in ns]
    ivf = [in_child(all_pairs_job, n, "ivf", threads=threads) for n in ns]
    recalls = [recall(i.extra[1], f.extra[1]) for f, i in zip(flat, ivf, strict=True)]
    return flat, ivf, recalls


def run_all_pairs(ns: list[int], threads: int) -> tuple[list[Row], dict]:
    """Exact and IVF all-vs-all at each size and at 1/8, 1/4, 1/2 of the smallest (where IVF
    takes over), torch.mm at the largest, recall of IVF at each.

    Returns:
        The family rows and a dict of the comparisons (``ladder``: every size measured).
    """
    sweep = [n for n in (ns[0] // 8, ns[0] // 4, ns[0] // 2) if n > 2 * K]
    flat, ivf, recalls = _exact_and_ivf(sweep + ns, threads)
    tor = in_child(all_pairs_job, ns[-1], "torch", threads=threads)
    check = compare(flat[-1].extra, tor.extra)
    ladder = [(f.n, f.seconds, i.seconds, r) for f, i, r in zip(flat, ivf, recalls, strict=True)]
    k = len(sweep)
    rows = [
        Row(f"knn exact (FAISS flat), {DIM}-d", _strip(flat[k:])),
        Row(f"knn IVF (nlist 4 sqrt N, nprobe 32), {DIM}-d", _strip(ivf[k:]),
            note="recall@10 against exact, every query: "
            + " / ".join(f"{r:.4f}" for r in recalls[k:])),
    ]  # fmt: skip
    info = {
        "n": ns[-1],
        "flat": flat[-1].seconds,
        "ivf": ivf[-1].seconds,
        "torch": tor.seconds,
        "torch_mib": _mib(tor),
        "flat_mib": _mib(flat[-1]),
        "ivf_mib": _mib(ivf[-1]),
        "recall": recalls[-1],
        "check": check,
        "ladder": ladder,
        "crossover": crossover(
            [p.n for p in flat], [p.seconds for p in flat], [p.seconds for p in ivf]
        ),
    }
    return rows, info


def _mib(p: Point) -> str:
    return f"{p.peak_mib:,.0f} (+{p.growth_mib:,.0f})"


def _strip(points: list[Point]) -> list[Point]:
    for p in points:
        p.extra = None  # the neighbour arrays are not needed past the comparisons
    return points


def run_batches(ns: list[int], queries: int, threads: int) -> list[Point]:
    """The batch-query workload at each size (one child each)."""
    return [in_child(batch_job, n, queries, threads=threads) for n in ns]


def print_knn(info: dict, batches: list[Point]) -> None:
    """The kNN table: all-vs-all at the largest size (with torch.mm), batch queries, crossovers."""
    n = info["n"]
    print(f"\n### kNN, K={K}, {DIM}-d mixture vectors, CPU: exact vs IVF vs torch.mm\n")
    print(
        "| workload | N | method | build s | search s | total s | queries/s | recall@10 "
        "| peak RSS MiB (growth) |"
    )
    print("|---|---|---|---:|---:|---:|---:|---:|---:|")
    for name, sec, mib, rec in (
        ("FAISS IndexFlatIP (exact, baseline)", info["flat"], info["flat_mib"], 1.0),
        ("torch.mm + topk (reference)", info["torch"], info["torch_mib"], None),
        ("FAISS IVFFlat (incl. training)", info["ivf"], info["ivf_mib"], info["recall"]),
    ):
        rec_s = f"{rec:.4f}" if rec is not None else "(ids vs flat below)"
        print(f"| all-vs-all | {n:,} | {name} | - | - | {sec:.2f} | {n / sec:,.0f} | {rec_s} | {mib} |")  # fmt: skip
    for p in batches:
        r = p.extra
        for kind, label in (
            ("flat", "FAISS IndexFlatIP (exact, baseline)"),
            ("ivf", "FAISS IVFFlat"),
        ):
            b, s = r[f"{kind}_build"], r[f"{kind}_search"]
            rec_s = "1.0000" if kind == "flat" else f"{r['recall']:.4f}"
            print(f"| {r['queries']:,} queries | {p.n:,} | {label} | {b:.2f} | {s:.2f} | {b + s:.2f} | {r['queries'] / s:,.0f} | {rec_s} | {_mib(p)}, both |")  # fmt: skip
    print("\nWhere IVF takes over, all-vs-all (IVF time includes its training):\n")
    print("| N | exact s | IVF s | IVF / exact | IVF recall@10 |")
    print("|---:|---:|---:|---:|---:|")
    for m, fe, iv, rec in info["ladder"]:
        print(f"| {m:,} | {fe:.3f} | {iv:.3f} | {iv / fe:.2f} | {rec:.4f} |")
    print(f"\n- torch.mm + topk vs FAISS flat at {n:,}: {info['torch'] / info['flat']:.2f}x the "
          f"time; {info['check']}")  # fmt: skip
    print(f"- IVF all-vs-all (build + N queries) becomes faster than exact at {info['crossover']}")
    for p in batches:
        r = p.extra
        gain = r["flat_search"] - r["ivf_search"]
        extra_build = r["ivf_build"] - r["flat_build"]
        qstar = f"{extra_build / gain * r['queries']:,.0f}" if gain > 0 else "never"
        print(f"- batch queries at {p.n:,}: IVF search {r['flat_search'] / r['ivf_search']:.1f}x "
              f"faster per query, its build pays off from {qstar} queries; IVF recall@10 "
              "(search s) by nprobe: " + ", ".join(f"{k}: {v[0]:.4f} ({v[1]:.2f} s)"
                                                  for k, v in r["probes"].items()))  # fmt: skip
    print(f"- {load_line()} after the table")
