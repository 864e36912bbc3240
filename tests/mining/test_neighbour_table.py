import numpy as np
import pyarrow.parquet as pq

from correlearn.mining.neighbour_table import KNN, neighbour_table, read_neighbour_ids


def test_table_drops_missing_neighbours_and_reads_back_by_key(tmp_path):
    keys = ["a", "b", "c"]
    ids = np.array([[1, 2], [2, -1], [0, 1]])
    scores = np.array([[0.9, 0.5], [0.8, -1.0], [0.7, 0.6]], np.float32)
    pq.write_table(neighbour_table(keys, scores, ids), tmp_path / KNN)
    rows = pq.read_table(tmp_path / KNN).to_pylist()
    assert rows[1] == {"key": "b", "nbr_keys": ["c"], "nbr_ids": [2], "scores": [0.800000011920929]}
    assert rows[0]["nbr_keys"] == ["b", "c"]
    # Another stage's image order, a key the artifact lacks, and the first k only.
    other = ["c", "a", "b", "z"]
    np.testing.assert_array_equal(
        read_neighbour_ids(tmp_path, other, None), [[1, 2], [2, 0], [0, -1], [-1, -1]]
    )
    np.testing.assert_array_equal(read_neighbour_ids(tmp_path, other, 1), [[1], [2], [0], [-1]])
