"""ORL's mapped proposal tasks on Prefect's Dask task runner (a 2-worker local cluster) give the same
artifact as the default runner, on real DAVIS frames."""

import shutil
from pathlib import Path

import pyarrow.parquet as pq

from flows.common import with_dask
from flows.orl import orl_flow

DAVIS = Path(__file__).resolve().parents[2] / "data" / "davis-mini"


def _config(tmp: Path) -> Path:
    root = tmp / "davis"
    for seq in ("dog-agility", "rollerblade", "surf"):
        dst = root / "JPEGImages" / "480p" / seq
        dst.mkdir(parents=True)
        for f in sorted((DAVIS / "JPEGImages" / "480p" / seq).glob("*.jpg"))[:3]:
            shutil.copy(f, dst / f.name)
    cfg = tmp / "cfg.yaml"
    cfg.write_text(
        f"datasets:\n  d: {{root: {root}, layout: davis}}\n"
        "image_shards: {dataset: d, max_short_side: 96, shard_size: 3}\n"
        "proposals: {long_side: 96, min_size: 16, processes: 1}\n"
    )
    return cfg


def test_dask_runner_gives_the_same_proposals(tmp_path, monkeypatch):
    cfg = _config(tmp_path)
    boxes = []
    for name, flow_fn in (("default", orl_flow), ("dask", with_dask(orl_flow, 2))):
        monkeypatch.setenv("CORRELEARN_HOME", str(tmp_path / name))
        out = flow_fn(str(cfg), [], [], "proposals", map_proposals=True)
        assert [r["stage"] for r in out["stages"]] == ["image_shards", "proposals"]
        res = out["stages"][-1]
        assert res["cache_hit"] is False
        boxes.append(pq.read_table(Path(res["path"]) / "boxes.parquet"))
    assert boxes[0].num_rows == 9
    assert boxes[0].equals(boxes[1])
