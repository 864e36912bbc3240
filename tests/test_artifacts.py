import json
import multiprocessing as mp
import time

import pytest

from correlearn.artifacts import ArtifactError, ArtifactStore, compute_key


def test_key_is_stable_and_order_independent():
    a = compute_key("s", 1, {"x": 1, "y": {"b": 2, "a": 1}}, {"in": "k1"})
    b = compute_key("s", 1, {"y": {"a": 1, "b": 2}, "x": 1}, {"in": "k1"})
    assert a == b
    assert len(a) == 16 and int(a, 16) >= 0


@pytest.mark.parametrize(
    "change",
    [
        dict(stage="t"),
        dict(version=2),
        dict(config={"x": 2}),
        dict(config={"x": 1, "extra": None}),
        dict(inputs={"in": "k2"}),
        dict(inputs={"other": "k1"}),
    ],
)
def test_key_is_sensitive_to_every_part(change):
    base = dict(stage="s", version=1, config={"x": 1}, inputs={"in": "k1"})
    assert compute_key(**base) != compute_key(**{**base, **change})


def test_commit_is_atomic_and_lists_files(tmp_path):
    store = ArtifactStore(tmp_path)
    partial = store.begin("st", "k", keep_partial=False)
    (partial / "a.bin").write_bytes(b"12345")
    (partial / "sub").mkdir()
    (partial / "sub" / "b.txt").write_text("hi")
    # Before commit nothing looks finished.
    assert not store.exists("st", "k")
    assert store.list() == []
    ref = store.commit("st", "k", {"stage": "st", "key": "k"})
    assert store.exists("st", "k")
    assert not partial.exists()
    m = json.loads((tmp_path / "st" / "k" / "manifest.json").read_text())
    assert {f["path"]: f["bytes"] for f in m["files"]} == {"a.bin": 5, "sub/b.txt": 2}
    assert ref.path == str(tmp_path / "st" / "k")
    assert store.find("k")[1] == "k"


def test_partial_is_kept_only_for_resumable_stages(tmp_path):
    store = ArtifactStore(tmp_path)
    p = store.begin("st", "k", keep_partial=False)
    (p / "done-shard-0").write_text("x")
    assert (store.begin("st", "k", keep_partial=True) / "done-shard-0").exists()
    assert not (store.begin("st", "k", keep_partial=False) / "done-shard-0").exists()


def test_missing_and_ambiguous_keys(tmp_path):
    store = ArtifactStore(tmp_path)
    with pytest.raises(ArtifactError, match="no artifact"):
        store.find("abc")
    for k in ("ab1", "ab2"):
        store.begin("st", k, keep_partial=False)
        store.commit("st", k, {"stage": "st", "key": k})
    with pytest.raises(ArtifactError, match="ambiguous"):
        store.find("ab")


def _hold_lock(root, ready, hold_s):
    store = ArtifactStore(root)
    with store.lock("st", "k"):
        ready.set()
        time.sleep(hold_s)


def test_lock_keeps_two_writers_apart(tmp_path):
    ctx = mp.get_context("spawn")
    ready = ctx.Event()
    proc = ctx.Process(target=_hold_lock, args=(str(tmp_path), ready, 3.0))
    proc.start()
    assert ready.wait(30)
    store = ArtifactStore(tmp_path)
    with pytest.raises(ArtifactError, match="being written"):
        with store.lock("st", "k", timeout_s=0.5):
            pass
    t0 = time.monotonic()
    with store.lock("st", "k", timeout_s=30):
        waited = time.monotonic() - t0
    proc.join()
    assert waited > 0.5  # it waited for the other writer to let go
