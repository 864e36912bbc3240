"""The ORL stages end to end on real DAVIS frames through the stage runner: outputs, the cache
(re-runs, a config change, a forced stage), resuming an interrupted ``proposals``, and the per-shard
units of ``proposals`` and ``embed`` (a mapped pre-pass gives the files of a plain run)."""

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import stages.embed as embed_mod
import stages.proposals as proposals_mod
from correlearn.data.readers import ShardedImages
from correlearn.mining.ref_json import import_ref_intra_boxes, import_ref_json
from correlearn.mining.shard_units import shard_names
from correlearn.pipeline import Pipeline
from correlearn.stage import UnitCall
from correlearn.workspace import get_workspace
from stages import STAGES, correspondence

DAVIS = Path(__file__).resolve().parents[2] / "data" / "davis-mini"
REGISTRY = dict(STAGES)
ORL_STAGES = ("image_shards", "pretrain_byol", "embed", "neighbours", "proposals", "correspondence")
TINY = "backbone: resnet_test, proj_hidden_dim: 64, proj_dim: 32, pred_hidden_dim: 64"
TRAIN = "train: {batch_size: 8, max_steps: 2, num_workers: 0, device: cpu, log_every: 1}"
CONFIG = f"""
image_shards: {{dataset: d, max_short_side: 128, shard_size: 4}}
pretrain_byol:
  method: {{{TINY}, image_size: 64}}
  {TRAIN}
embed: {{resize: 73, crop: 64, num_workers: 0, device: cpu}}
neighbours: {{k: 5}}
proposals: {{long_side: 128, min_size: 24, max_boxes: 12, processes: 1}}
correspondence: {{knn_k: 3, crop_size: 48, num_workers: 0, device: cpu}}
pretrain_orl:
  method: {{{TINY}, image_size: 64, roi_size: 32}}
  {TRAIN}
"""


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """12 DAVIS frames (4 of each of 3 sequences, 5 frames apart) and a workspace, run once."""
    tmp = tmp_path_factory.mktemp("orl")
    for seq in ("bear", "dog-agility", "surf"):
        dst = tmp / "davis" / "JPEGImages" / "480p" / seq
        dst.mkdir(parents=True)
        for f in sorted((DAVIS / "JPEGImages" / "480p" / seq).glob("*.jpg"))[:20:5]:
            shutil.copy(f, dst / f.name)
    res = _pipe(tmp).run_stage("pretrain_orl")
    assert not res.cache_hit
    return tmp


def _pipe(tmp: Path, overrides=None) -> Pipeline:
    ws = get_workspace(tmp / "home")
    ws.artifacts.mkdir(parents=True, exist_ok=True)
    cfg = tmp / "orl.yaml"
    cfg.write_text(f"datasets:\n  d: {{root: {tmp / 'davis'}, layout: davis}}\n{CONFIG}")
    return Pipeline(cfg, REGISTRY, ws, overrides, tracker=None)


def _recomputed(pipe: Pipeline, **kw) -> set[str]:
    final = pipe.run_stage("pretrain_orl", **kw)
    results = {**pipe._results, "pretrain_orl": final}
    assert set(results) == {*ORL_STAGES, "pretrain_orl"}
    return {name for name, r in results.items() if not r.cache_hit}


def _art(pipe: Pipeline, stage: str) -> Path:
    return Path(pipe.run_stage(stage).ref.path)


def test_outputs_of_every_stage(workdir):
    pipe = _pipe(workdir)
    images = ShardedImages(_art(pipe, "image_shards"))
    assert len(images) == 12 and len(set(images.shards)) == 3
    emb_dir = _art(pipe, "embed")
    emb = np.load(emb_dir / "embeddings.npy")
    assert emb.shape == (12, 32) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1, atol=1e-5)
    assert json.loads((emb_dir / "keys.json").read_text()) == images.keys
    nn = pq.read_table(_art(pipe, "neighbours") / "knn.parquet").to_pylist()
    assert all(len(r["nbr_keys"]) == 5 and r["key"] not in r["nbr_keys"] for r in nn)
    assert all(r["scores"] == sorted(r["scores"], reverse=True) for r in nn)
    assert (_art(pipe, "neighbours") / "pictures" / "knn.png").is_file()
    boxes = pq.read_table(_art(pipe, "proposals") / "boxes.parquet").to_pylist()
    assert [r["key"] for r in boxes] == images.keys
    for r, i in zip(boxes, range(12), strict=True):
        b = np.array(r["boxes"]).reshape(-1, 4)
        h, w = images[i]["image"].shape[:2]
        assert 1 <= len(b) <= 12 and r["n_raw"] > len(b)
        assert np.all(b[:, 2:] - b[:, :2] >= 24) and np.all(b[:, 2] <= w) and np.all(b[:, 3] <= h)
    corr = _art(pipe, "correspondence")
    pairs = pq.read_table(corr / "pairs.parquet")
    nbrs = {r["key"]: r["nbr_keys"][:3] for r in nn}
    for r in pairs.to_pylist():
        assert r["nbr_key"] == nbrs[r["key"]][r["nbr_rank"]]  # knn_k = 3 of the 5 stored
        own = [b for x in boxes if x["key"] == r["key"] for b in x["boxes"]]
        assert any(np.allclose(r["q_box"], b) for b in own)
    per_query = {len(x["boxes"]) for x in boxes}
    assert pairs.num_rows == sum(3 * max(int(0.1 * len(x["boxes"])), 1) for x in boxes), per_query
    assert (corr / "pictures" / "pairs.png").is_file()
    orl = _art(pipe, "pretrain_orl")
    spec = json.loads((orl / "backbone.json").read_text())
    assert spec["method"] == "orl" and spec["backbone"] == "resnet_test"
    assert (orl / "backbone.pt").is_file() and (orl / "pictures" / "inter.png").is_file()
    assert json.loads((orl / "manifest.json").read_text())["metadata"]["steps"] == 2


def test_reference_json_round_trips(workdir):
    pipe = _pipe(workdir)
    corr = _art(pipe, "correspondence")
    ref = json.loads((corr / correspondence.JSON_NAME).read_text())
    assert ref["info"]["knn_image_num"] == 3 and ref["info"]["bbox_min_size"] == 24
    assert ref["info"]["intra_bbox_num"] == 12 and ref["info"]["knn_bbox_pair_ratio"] == 0.1
    back = import_ref_json(corr / correspondence.JSON_NAME)
    assert back.equals(pq.read_table(corr / "pairs.parquet"))
    intra = import_ref_intra_boxes(corr / correspondence.JSON_NAME)
    for r in pq.read_table(_art(pipe, "proposals") / "boxes.parquet").to_pylist():
        np.testing.assert_array_equal(intra[r["key"]], np.array(r["boxes"]).reshape(-1, 4))


def test_rerun_is_all_cache_hits(workdir):
    assert _recomputed(_pipe(workdir)) == set()
    bookkeeping = ["embed.batch_size=3", "proposals.processes=2", "correspondence.num_workers=1"]
    assert _recomputed(_pipe(workdir, bookkeeping)) == set()  # not in the keys


def test_pair_ratio_recomputes_only_correspondence_and_stage3(workdir):
    pipe = _pipe(workdir, ["correspondence.pair_ratio=0.25"])
    assert _recomputed(pipe) == {"correspondence", "pretrain_orl"}


def test_forcing_proposals_recomputes_its_descendants_only(workdir):
    pipe = _pipe(workdir)
    assert _recomputed(pipe, force_upstream=frozenset({"proposals"})) == {
        "proposals",
        "correspondence",
        "pretrain_orl",
    }


def test_interrupted_proposals_resume_skips_finished_shards(workdir, monkeypatch):
    over = ["proposals.max_boxes=11", "proposals.processes=2"]  # a new key; a process pool
    real, calls = proposals_mod.propose_shard, []

    def flaky(shards_dir, name, cfg, out_dir):
        calls.append(name)
        if calls == ["shard-000000.tar", "shard-000001.tar"]:
            raise KeyboardInterrupt  # Ctrl-C during the second shard
        return real(shards_dir, name, cfg, out_dir)

    monkeypatch.setattr(proposals_mod, "propose_shard", flaky)
    with pytest.raises(KeyboardInterrupt):
        _pipe(workdir, over).run_stage("proposals")
    calls.append("restart")
    res = _pipe(workdir, over).run_stage("proposals")
    assert calls[3:] == ["shard-000001.tar", "shard-000002.tar"] and not res.cache_hit
    manifest = json.loads((Path(res.ref.path) / "manifest.json").read_text())
    assert manifest["counts"]["shards_resumed"] == 1
    assert [f["path"] for f in manifest["files"]] == ["boxes.parquet"]
    # Same boxes as an uninterrupted single-process pass (processes is not in the key).
    assert _pipe(workdir, ["proposals.max_boxes=11"]).run_stage("proposals").cache_hit
    shards = _art(_pipe(workdir), "image_shards")
    cfg = _pipe(workdir, over).section("proposals").model_copy(update={"processes": 1})
    (workdir / "reference").mkdir()
    parts = [real(shards, n, cfg, workdir / "reference") for n in shard_names(shards)]
    reference = pa.concat_tables([pq.read_table(p) for p in parts])
    assert pq.read_table(Path(res.ref.path) / "boxes.parquet").equals(reference)


def _files(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != "manifest.json"
    }


@pytest.mark.parametrize(
    ("stage", "module", "compute", "override"),
    [
        ("proposals", proposals_mod, "propose_shard", "proposals.max_boxes=10"),
        ("embed", embed_mod, "embed_shard", "embed.crop=48"),
    ],
)
def test_mapped_units_then_the_stage_equal_a_plain_run(
    workdir, monkeypatch, stage, module, compute, override
):
    pipe = _pipe(workdir, [override])  # a key no other test makes
    spec = pipe.registry[stage]
    runs = {name: pipe.run_stage(src) for name, src in spec.inputs.items()}
    call, todo = pipe.pending_units(stage, runs)
    call = UnitCall.from_dict(call.to_dict(), spec)  # as a mapped task receives it
    units = spec.units.names(call)
    assert todo == units == shard_names(runs["shards"].path) and len(units) == 3
    for unit in units[:2]:  # what mapped tasks would have done before the stage runs
        assert spec.units.run_unit(call, unit) == spec.units.done_file(call, unit)
        assert spec.units.done_file(call, unit).is_file()
    assert pipe.pending_units(stage, runs)[1] == units[2:]
    real, calls = getattr(module, compute), []
    monkeypatch.setattr(module, compute, lambda *a: calls.append(a[1]) or real(*a))
    res = pipe.run_stage(stage, inputs=runs)
    assert calls == [units[2]] and not res.cache_hit  # only the unit not done yet
    mapped = _files(Path(res.ref.path))
    plain = _pipe(workdir, [override]).run_stage(stage, force=True)
    assert calls == [units[2], *units] and plain.ref.key == res.ref.key
    assert _files(Path(plain.ref.path)) == mapped
