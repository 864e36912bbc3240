"""`correlearn gc` over a real store and a local MLflow store: what recent flow runs used (typed
records, old-style dicts, or nested stage runs) and its inputs stay; stale leftovers go."""

import json

from app import cli
from correlearn.gc import plan_gc, run_gc, used_artifacts
from correlearn.records import FLOW_RESULT, FlowRun, StageRun
from correlearn.tracking import Tracker
from correlearn.workspace import get_workspace
from tests.workspace_fixtures import A, B, C, D


def _keys(store) -> set[str]:
    return {m["key"] for m in store.list()}


def test_plan_reads_each_kind_of_record(ws):
    plan = plan_gc(ws.store, Tracker(get_workspace(ws.home)), keep_runs=3)
    assert [(r["flow"], r["source"], r["artifacts"]) for r in plan.runs] == [
        ("byol", FLOW_RESULT, 1),  # FlowRun.to_dict()
        ("vfs", FLOW_RESULT, 1),  # a dict written before the typed records
        ("byol", "stage runs", 1),  # no record
    ]
    assert plan.artifacts == [] and plan.kept == 4 and plan.note == ""


def test_gc_dry_run_lists_and_keeps_everything(ws, capsys):
    assert cli.main(["gc", "--dry-run", "--keep-runs", "1", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    # Kept: the checkpoint the newest run used and its input shards; removed: the two others.
    assert {(a["stage"], a["key"]) for a in plan["artifacts"]} == {
        ("image_shards", C),
        ("pretrain_byol", D),
    }
    assert {s["path"] for s in plan["stale"]} == {str(ws.old), str(ws.lock)}
    assert plan["kept"] == 2 and plan["bytes"] == 500 + 700 + 50
    assert len(ws.store.list()) == 4 and ws.old.exists() and ws.lock.exists()


def test_gc_deletes_unreferenced_and_keeps_referenced(ws, capsys):
    assert cli.main(["gc", "--keep-runs", "2"]) == 0  # the old-style record keeps D
    assert _keys(ws.store) == {A, B, D}
    assert not ws.old.exists() and not ws.lock.exists() and ws.fresh.exists()
    assert cli.main(["gc", "--keep-runs", "1"]) == 0
    assert _keys(ws.store) == {A, B}
    assert "removed pretrain_byol/" + D in capsys.readouterr().out


def test_run_gc_removes_what_the_plan_names(ws):
    plan = plan_gc(ws.store, Tracker(get_workspace(ws.home)), keep_runs=1)
    removed = run_gc(ws.store, plan)
    assert set(removed) == {f"image_shards/{C}", f"pretrain_byol/{D}", str(ws.old), str(ws.lock)}
    assert _keys(ws.store) == {A, B}
    again = run_gc(ws.store, plan)  # the artifacts are gone: only the (missing) stale paths
    assert sorted(again) == sorted([str(ws.old), str(ws.lock)])


def test_a_flow_of_flows_uses_the_stages_of_its_flows():
    inner = FlowRun("byol", [StageRun("pretrain_byol", B, "/b", False)])
    demo = FlowRun("demo", [StageRun("image_shards", A, "/a", True)], flows=[inner])
    assert used_artifacts(demo) == {("image_shards", A), ("pretrain_byol", B)}


def test_an_artifact_in_use_is_counted_as_kept_not_removed(ws, capsys):
    from correlearn.artifact_ref import ArtifactRef

    ref = ArtifactRef("pretrain_byol", D, str(ws.store.path("pretrain_byol", D)))
    with ws.store.hold({"checkpoint": ref}):  # a running stage reads D
        assert cli.main(["gc", "--keep-runs", "1"]) == 0
    out = capsys.readouterr().out
    assert f"kept pretrain_byol/{D}" in out and D in _keys(ws.store)
    summary = out.strip().splitlines()[-1]
    assert summary.startswith("1 artifact(s) and 2 stale item(s)"), summary
    assert (
        "3 artifact(s) kept (referenced by the last 1 flow run(s), 1 in use by a running stage)"
        in summary
    )
