"""ORL's mapped mining tasks (proposals and embeddings per shard) on Prefect's Dask task runner, a
2-worker local cluster, give the same artifacts as the default runner, on real DAVIS frames."""

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from app.dask import with_dask
from flows.orl import orl_flow


def _config(tmp: Path, make_davis) -> Path:
    root = make_davis(tmp / "davis", ("dog-agility", "rollerblade", "surf"), 3, masks=False)
    cfg = tmp / "cfg.yaml"
    cfg.write_text(
        f"datasets:\n  d: {{root: {root}, layout: davis}}\n"
        "image_shards: {dataset: d, max_short_side: 96, shard_size: 3}\n"
        "proposals: {long_side: 96, min_size: 16, processes: 1}\n"
        "pretrain_byol:\n"
        "  method: {backbone: resnet_test, proj_hidden_dim: 32, proj_dim: 16, pred_hidden_dim: 32,"
        " image_size: 64}\n"
        "  train: {batch_size: 4, max_steps: 1, num_workers: 0, device: cpu}\n"
        "embed: {resize: 73, crop: 64, num_workers: 0, device: cpu}\n"
    )
    return cfg


def test_dask_runner_gives_the_same_mining_artifacts(tmp_path, monkeypatch, make_davis):
    cfg = _config(tmp_path, make_davis)
    boxes, emb = [], []
    for name, flow_fn in (("default", orl_flow), ("dask", with_dask(orl_flow, 2))):
        monkeypatch.setenv("CORRELEARN_HOME", str(tmp_path / name))
        out = flow_fn(str(cfg), [], [], "embed", map_shards=True)
        by_stage = {r["stage"]: r for r in out["stages"]}
        assert list(by_stage) == ["image_shards", "proposals", "pretrain_byol", "embed"]
        assert not any(r["cache_hit"] for r in out["stages"])
        boxes.append(pq.read_table(Path(by_stage["proposals"]["path"]) / "boxes.parquet"))
        emb.append(np.load(Path(by_stage["embed"]["path"]) / "embeddings.npy"))
    assert boxes[0].num_rows == 9
    assert boxes[0].equals(boxes[1])
    # Training is deterministic on CPU, so both runs embed with the same weights.
    assert emb[0].shape == (9, 16)
    np.testing.assert_allclose(emb[0], emb[1], atol=1e-5)
