"""The stage runner on a toy registry: cache hits, forcing, MLflow runs, crash and resume."""

import json

import pytest

from correlearn.config import ConfigError, StrictModel
from correlearn.pipeline import Pipeline
from correlearn.stage import StageSpec
from correlearn.tracking import Tracker
from correlearn.workspace import get_workspace

CALLS: list[str] = []


class SrcCfg(StrictModel):
    n: int = 3


class SumCfg(StrictModel):
    scale: int = 1
    crash_after: int | None = None


def _src(ctx):
    CALLS.append("src")
    (ctx.out_dir / "numbers.json").write_text(json.dumps(list(range(ctx.config.n))))
    ctx.count("numbers", ctx.config.n)
    ctx.skip("item-7", "corrupt")


def _sum(ctx):
    CALLS.append("sum")
    nums = json.loads((ctx.input_path("src") / "numbers.json").read_text())
    done = ctx.out_dir / "partial.json"
    acc = json.loads(done.read_text()) if done.exists() else []
    at_start = len(acc)
    for i, x in enumerate(nums):
        if i < len(acc):
            continue  # finished before the crash: resumable stages skip it
        if ctx.config.crash_after is not None and i == ctx.config.crash_after:
            raise KeyboardInterrupt("simulated kill")
        acc.append(x * ctx.config.scale)
        done.write_text(json.dumps(acc))
    (ctx.out_dir / "sum.json").write_text(json.dumps(sum(acc)))
    ctx.log_metrics({"total": float(sum(acc))})
    return {"resumed": ctx.resumed, "items_at_start": at_start}


REG = {
    "src": StageSpec("src", 1, SrcCfg, _src),
    "sum": StageSpec("sum", 1, SumCfg, _sum, inputs={"src": "src"}, resumable=True),
}


@pytest.fixture()
def pipe_factory(tmp_path):
    ws = get_workspace(tmp_path / "home")
    ws.artifacts.mkdir(parents=True)
    ws.mlflow_artifacts.mkdir(parents=True)
    cfg = tmp_path / "p.yaml"
    cfg.write_text("src: {n: 4}\nsum: {scale: 2}\n")
    tracker = Tracker(ws)

    def make(overrides=None, parent=None):
        return Pipeline(cfg, REG, ws, overrides, tracker, parent)

    CALLS.clear()
    return make, tracker


def test_cache_hit_recomputes_nothing_and_is_recorded(pipe_factory):
    make, tracker = pipe_factory
    r1 = make().run_stage("sum")
    assert not r1.cache_hit and CALLS == ["src", "sum"]
    assert json.loads(open(r1.ref.path + "/sum.json").read()) == 12
    r2 = make().run_stage("sum")
    assert r2.cache_hit and r2.ref == r1.ref and CALLS == ["src", "sum"]
    runs = tracker.client.search_runs([tracker.experiment_id])
    by_hit = {}
    for r in runs:
        by_hit.setdefault(r.data.tags["cache_hit"], []).append(r.data.tags["stage"])
    assert sorted(by_hit["false"]) == ["src", "sum"]
    assert sorted(by_hit["true"]) == ["src", "sum"]
    computed = [
        r for r in runs if r.data.tags["cache_hit"] == "false" and r.data.tags["stage"] == "sum"
    ][0]
    assert computed.data.params["scale"] == "2"
    assert computed.data.metrics["total"] == 12.0
    assert computed.data.tags["input.src"].startswith("src/")
    manifest = json.loads(open(r1.ref.path + "/manifest.json").read())
    assert manifest["mlflow_run_id"] == computed.info.run_id
    assert manifest["inputs"]["src"]["stage"] == "src"


def test_config_change_changes_only_downstream(pipe_factory):
    make, _ = pipe_factory
    a = make().run_stage("sum")
    CALLS.clear()
    b = make(["sum.scale=3"]).run_stage("sum")
    assert CALLS == ["sum"] and a.ref.key != b.ref.key
    CALLS.clear()
    c = make(["src.n=5"]).run_stage("sum")
    assert CALLS == ["src", "sum"] and c.ref.key not in (a.ref.key, b.ref.key)


def test_force_recomputes_stage_and_descendants(pipe_factory):
    make, _ = pipe_factory
    make().run_stage("sum")
    CALLS.clear()
    make().run_stage("sum", force_upstream=frozenset({"src"}))
    assert CALLS == ["src", "sum"]
    CALLS.clear()
    make().run_stage("sum", force=True)
    assert CALLS == ["sum"]


def test_nested_runs_and_skips_in_manifest(pipe_factory):
    make, tracker = pipe_factory
    parent = tracker.start("flow")
    r = make(parent=parent).run_stage("src")
    m = json.loads(open(r.ref.path + "/manifest.json").read())
    assert m["skipped"] == [{"item": "item-7", "reason": "corrupt"}]
    assert m["counts"] == {"numbers": 4}
    child = tracker.client.get_run(m["mlflow_run_id"])
    assert child.data.tags["mlflow.parentRunId"] == parent


def test_killed_stage_leaves_nothing_finished_and_resumes(pipe_factory):
    make, tracker = pipe_factory
    with pytest.raises(KeyboardInterrupt):
        make(["sum.crash_after=2"]).run_stage("sum")
    p = make(["sum.crash_after=2"])
    assert p.store.list("sum") == []
    assert len(list((p.store.root / "sum").glob(".partial-*"))) == 1
    failed = [
        r for r in tracker.client.search_runs([tracker.experiment_id]) if r.info.status == "FAILED"
    ]
    assert len(failed) == 1


def test_resume_continues_same_run(pipe_factory, monkeypatch):
    make, tracker = pipe_factory
    state = {"crash": True}
    orig = REG["sum"].run

    def flaky(ctx):
        if state["crash"]:
            (ctx.out_dir / "partial.json").write_text(json.dumps([0, 2]))
            raise KeyboardInterrupt
        return orig(ctx)

    reg = dict(REG)
    reg["sum"] = StageSpec("sum", 1, SumCfg, flaky, inputs={"src": "src"}, resumable=True)
    p = make()
    p.registry = reg
    with pytest.raises(KeyboardInterrupt):
        p.run_stage("sum")
    state["crash"] = False
    p = make()
    p.registry = reg
    r = p.run_stage("sum")
    m = json.loads(open(r.ref.path + "/manifest.json").read())
    assert m["metadata"] == {"resumed": True, "items_at_start": 2}
    assert json.loads(open(r.ref.path + "/sum.json").read()) == 12
    run = tracker.client.get_run(m["mlflow_run_id"])
    assert run.info.status == "FINISHED"
    sum_runs = [
        x
        for x in tracker.client.search_runs([tracker.experiment_id])
        if x.data.tags["stage"] == "sum"
    ]
    assert len(sum_runs) == 1  # the killed run was continued, not duplicated


def test_unknown_section_and_stage(pipe_factory, tmp_path):
    make, _ = pipe_factory
    with pytest.raises(ConfigError, match="unknown section"):
        make(["bogus.x=1"])
    with pytest.raises(ConfigError, match="unknown stage"):
        make().run_stage("nope")
    with pytest.raises(ConfigError, match=r"^--set: sum.scale"):
        make(["sum.scale=lots"]).run_stage("sum")


# --- issue 11: faults -------------------------------------------------------------------------


def _with_sum(p, fn):
    reg = dict(REG)
    reg["sum"] = StageSpec("sum", 1, SumCfg, fn, inputs={"src": "src"}, resumable=True)
    p.registry = reg
    return p


def test_gc_cannot_remove_an_input_while_a_stage_reads_it(pipe_factory):
    # item 1: gc deleted the shards a running `stage run` was reading.
    from correlearn.gc import GcPlan, run_gc

    make, _ = pipe_factory
    p = make()
    src = p.run_stage("src")
    seen = {}

    def reads_during_gc(ctx):
        a = {"stage": "src", "key": src.ref.key, "path": src.ref.path, "bytes": 1}
        seen["removed"] = run_gc(p.store, GcPlan(artifacts=[a]))
        return REG["sum"].run(ctx)

    r = _with_sum(make(), reads_during_gc).run_stage("sum")
    assert seen["removed"] == [] and p.store.exists("src", src.ref.key)
    assert json.loads(open(r.ref.path + "/sum.json").read()) == 12
    # once nobody reads it, gc may remove it
    a = {"stage": "src", "key": src.ref.key, "path": src.ref.path, "bytes": 1}
    assert run_gc(p.store, GcPlan(artifacts=[a])) == [f"src/{src.ref.key}"]


@pytest.mark.parametrize("damage", ["truncate", "delete"])
def test_a_damaged_artifact_is_no_cache_hit(pipe_factory, capsys, damage):
    # item 6: a truncated or deleted file inside a finished artifact stayed a cache hit forever.
    make, _ = pipe_factory
    r1 = make().run_stage("src")
    f = __import__("pathlib").Path(r1.ref.path) / "numbers.json"
    f.write_text("[0") if damage == "truncate" else f.unlink()
    CALLS.clear()
    r2 = make().run_stage("src")
    assert not r2.cache_hit and CALLS == ["src"] and r2.ref.key == r1.ref.key
    assert "numbers.json" in capsys.readouterr().err
    assert json.loads(f.read_text()) == [0, 1, 2, 3]
    assert make().store.verify("src", r1.ref.key, content=True) == []


def test_verify_with_content_finds_a_same_size_change(pipe_factory):
    make, _ = pipe_factory
    r = make().run_stage("src")
    f = __import__("pathlib").Path(r.ref.path) / "numbers.json"
    f.write_text(f.read_text().replace("3", "4"))
    store = make().store
    assert store.verify("src", r.ref.key) == []  # sizes agree
    assert "numbers.json: content differs" in store.verify("src", r.ref.key, content=True)[0]


def test_the_stage_error_survives_a_failing_tracker(pipe_factory, monkeypatch):
    # item 8: ending the MLflow run failed too (disk full) and its error replaced the stage's.
    import errno

    make, tracker = pipe_factory

    def disk_full(ctx):
        raise OSError(errno.ENOSPC, "No space left on device")

    real_end = tracker.end

    def end_fails(run_id, ok=True):
        if ok:
            return real_end(run_id, ok)
        raise OSError(errno.ENOSPC, "database or disk is full")

    p = _with_sum(make(), disk_full)
    p.run_stage("src")
    monkeypatch.setattr(tracker, "end", end_fails)
    with pytest.warns(UserWarning, match="could not mark MLflow run"):
        with pytest.raises(OSError, match="No space left on device"):
            p.run_stage("sum")


class TrainLikeCfg(StrictModel):
    from correlearn.train.config import TrainConfig as _T

    train: _T = _T(device="cpu")


def _fit_pipeline(make, overrides):
    base = make()
    reg = {**REG, "fit": StageSpec("fit", 1, TrainLikeCfg, lambda ctx: None)}
    return Pipeline(base.config_path, reg, base.ws, overrides, base.tracker)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("fit.train.seed=-1", r"^--set: fit.train.seed"),
        ("fit.train.device=banana", r"^--set: fit.train.device"),
    ],
)
def test_bad_train_values_fail_before_any_work(pipe_factory, override, message):
    # item 9: seed=-1 and device=banana were accepted and crashed after the partial folder and
    # the MLflow run existed.
    make, tracker = pipe_factory
    p = _fit_pipeline(make, [override])
    with pytest.raises(ConfigError, match=message):
        p.run_stage("fit")
    assert not (p.store.root / "fit").exists()
    assert tracker.client.search_runs([tracker.experiment_id]) == []


def test_an_unavailable_device_fails_before_any_work(pipe_factory, monkeypatch):
    import torch

    make, _ = pipe_factory
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    p = _fit_pipeline(make, ["fit.train.device=cuda:1"])
    with pytest.raises(ConfigError, match="fit.train.device: 'cuda:1' requested but CUDA"):
        p.run_stage("fit")
