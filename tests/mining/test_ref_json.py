import json

import numpy as np
import pyarrow as pa
import pytest

from correlearn.mining.correspondence import mine_pairs
from correlearn.mining.ref_json import export_ref_json, import_ref_intra_boxes, import_ref_json
from tests.mining.test_correspondence import _toy_collection


def test_json_export_round_trips(tmp_path):
    keys, knn, boxes, emb = _toy_collection()
    t = mine_pairs(keys, knn, boxes, emb, ratio=0.1)
    path = tmp_path / "corr.json"
    export_ref_json(t, path, intra_boxes=dict(zip(keys, boxes, strict=True)))
    back = import_ref_json(path)
    assert back.equals(t)
    intra = import_ref_intra_boxes(path)
    assert all(np.array_equal(intra[k], b) for k, b in zip(keys, boxes, strict=True))

    data = json.loads(path.read_text())
    ann = data["pseudo_annotations"]
    assert data["images"]["file_name"] == keys
    assert ann["knn_image_id"] == [[1, 2], [2, 0], [0]]
    assert set(data["info"]) >= {"knn_image_num", "knn_bbox_pair_ratio", "bbox_min_size"}
    pair = ann["knn_bbox_pair"][0][0][0]  # image a, neighbour b, best pair: 8 ints, xywh twice
    assert len(pair) == 8 and all(isinstance(v, int) for v in pair) and pair[2:4] == [100, 120]
    # Without scores (a reference-produced file) the table still loads, with NaN scores.
    del ann["knn_bbox_pair_score"]
    path.write_text(json.dumps(data))
    ref = import_ref_json(path)
    assert np.isnan(ref["score"].to_numpy()).all() and ref["q_box"].equals(t["q_box"])


def test_export_without_intra_boxes_uses_query_boxes(tmp_path):
    keys, knn, boxes, emb = _toy_collection()
    t = mine_pairs(keys, knn, boxes, emb, ratio=0.1)
    export_ref_json(t, tmp_path / "c.json")
    intra = import_ref_intra_boxes(tmp_path / "c.json")
    q = {tuple(b) for b in t.filter(pa.compute.equal(t["key"], "a"))["q_box"].to_pylist()}
    assert {tuple(b) for b in intra["a"].tolist()} == q


def test_info_overrides_and_duplicate_keys(tmp_path):
    keys, knn, boxes, emb = _toy_collection()
    t = mine_pairs(keys, knn, boxes, emb, ratio=0.1)
    export_ref_json(t, tmp_path / "c.json", image_keys=keys, info={"bbox_min_size": 24.0})
    info = json.loads((tmp_path / "c.json").read_text())["info"]
    assert (
        info["bbox_min_size"] == 24.0
        and info["knn_image_num"] == 2
        and info["intra_bbox_num"] == 100
    )
    with pytest.raises(ValueError, match="'a' appears twice"):
        export_ref_json(t, tmp_path / "d.json", image_keys=["a", "b", "a", "c"])
