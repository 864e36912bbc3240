"""bench/scale.py at tiny sizes: every table and row is printed; the helpers' arithmetic.

No timing is asserted (the CPU is shared); the sizes are the smallest that run every code path.
"""

import numpy as np
import pytest
import scale
import scale_harness
import scale_knn
import scale_stages

TINY = ["--base", "1", "--frames", "2", "--knn-base", "200", "--batch-sizes", "1500",
        "--queries", "40", "--tiny-byol", "--threads", "1"]  # fmt: skip


def _rows(out: str, heading: str) -> list[list[str]]:
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"### {heading}"))
    rows = []
    for line in lines[start + 4 :]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.strip("|").split("|")])
    return rows


def test_tiny_run_prints_every_table(capsys):
    scale.main(TINY)
    out = capsys.readouterr().out
    assert out.count("load average") >= 5  # at start and after each of the four tables
    images = _rows(out, "Images")
    assert [r[0] for r in images] == ["image_shards", "embed", "proposals"]
    assert all(r[1] == "1 / 4 / 16" for r in images)
    lp = _rows(out, "Label propagation")
    assert [r[1] for r in lp] == ["2 / 8 / 32"] * 3
    assert [r[0] for r in lp][0] == "label propagation, total"
    knn = _rows(out, "kNN all-vs-all")
    assert [r[1] for r in knn] == ["200 / 800 / 3,200"] * 2
    for r in images + lp + knn:
        float(r[6]), float(r[7])  # both slopes are numbers
    table = _rows(out, "kNN, K=10")
    assert [r[0] for r in table] == ["all-vs-all"] * 3 + ["40 queries"] * 2
    assert 0 < float(table[2][7]) <= 1 and 0 < float(table[4][7]) <= 1  # IVF recall@10
    assert "ids identical at" in out and "NOT all within" not in out  # FAISS == torch.mm
    assert "Where IVF takes over" in out and "| 25 |" in out  # the sweep below 1x: 25, 50, 100


def test_only_one_family(capsys):
    scale.main([*TINY, "--only", "knn"])
    out = capsys.readouterr().out
    assert "### Images" not in out and "### kNN all-vs-all" in out


def test_a_failing_job_raises_with_the_child_traceback():
    with pytest.raises(RuntimeError, match="ZeroDivisionError"):
        scale_harness.in_child(_broken_job, 1)


def _broken_job(n):
    return lambda: n / 0


def test_slopes_and_fits():
    ns = [10, 40, 160]
    assert scale_harness.fitted_slope(ns, [1.0, 4.0, 16.0]) == pytest.approx(1.0)
    assert scale_harness.fitted_slope(ns, [1.0, 16.0, 256.0]) == pytest.approx(2.0)
    assert scale_harness.linear_fit(ns, [2.0 + 0.1 * n for n in ns]) == "2.00 s + 100 ms"


def test_crossover_and_recall():
    ns = [1000, 4000, 16000]
    inter = scale_knn.crossover(ns, [1.0, 16.0, 256.0], [4.0, 16.0 * 2, 128.0])
    assert inter.startswith("N ~ ") and "interpolated between 4,000 and 16,000" in inter
    assert "extrapolated" in scale_knn.crossover(ns, [1.0, 16.0, 256.0], [8.0, 64.0, 512.0])
    assert scale_knn.crossover(ns, [2.0, 8.0, 32.0], [1.0, 4.0, 16.0]).startswith("below")
    exact = np.array([[1, 2, 3], [4, 5, 6]])
    assert scale_knn.recall(np.array([[3, 2, 1], [4, -1, 9]]), exact) == pytest.approx(4 / 6)


def test_mixture_rows_are_unit_and_seeded():
    x = scale_knn.mixture(500, d=16)
    assert x.shape == (500, 16) and x.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1, atol=1e-5)
    np.testing.assert_array_equal(x, scale_knn.mixture(500, d=16))


def test_ping_pong_and_spread():
    assert scale_stages.ping_pong([0, 1, 2], 7) == [0, 1, 2, 1, 0, 1, 2]
    assert scale_stages.spread(list(range(10)), 4) == [0, 3, 6, 9]
