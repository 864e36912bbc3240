"""Fault cases of runs: kill -9, signals, two runs at once, dead servers, gc, budgets, a full disk.

Registered into ``bench/faults.py``; each runs the real CLI in a fresh workspace
(``bench/fault_harness.py``).
"""

from __future__ import annotations

import shutil
import signal
import time
from pathlib import Path

from fault_harness import (
    SEQS_ALL,
    case,
    ckpt_step,
    clean,
    cli,
    davis_copy,
    manifests,
    one_error,
    record_flow_run,
    row,
    skipped,
    spawn,
    stage,
    tmpfs,
    train_args,
    wait_for,
    write_config,
)


@case
def kill9_mid_training(home: Path) -> dict:
    cfg = home.parent / "cfg.yaml"
    proc = spawn(home, *train_args(cfg, "pretrain_byol.train.max_steps=40"))
    reached = wait_for(lambda: ckpt_step(home) >= 10)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    at = ckpt_step(home)
    unfinished = not manifests(home, "pretrain_byol")
    p = cli(home, *train_args(cfg, "pretrain_byol.train.max_steps=40"))
    m = (manifests(home, "pretrain_byol") or [{}])[-1]
    runs = cli(home, "status")
    kept = reached and unfinished and "[resuming]" in p.stdout and m.get("stopped_at_step") == 40
    return row(f"kill -9 at a checkpoint of step {at}, then the same call", p.returncode,
               clean(p), kept and "RUNNING" not in runs.stdout, None)  # fmt: skip


@case
def kill9_mid_artifact(home: Path) -> dict:
    data = davis_copy(home.parent / "d", seqs=SEQS_ALL, n=200)
    cfg = write_config(home.parent, data)
    proc = spawn(home, "stage", "run", "image_shards", "--config", str(cfg))
    # a shard being written (.shard-N.tar.tmp<pid>) or written: the build is mid-artifact
    wait_for(lambda: any((home / "artifacts").glob("image_shards/.partial-*/*shard-*.tar*")), 120)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    none = len(manifests(home, "image_shards")) == 1  # only the template's
    p = stage(home, cfg, "image_shards")
    v = cli(home, "artifacts", "verify")
    return row("kill -9 while shards are written, then re-run", p.returncode, clean(p),
               none and clean(v) and len(manifests(home, "image_shards")) == 2, None)  # fmt: skip


@case
def two_runs_at_once(home: Path) -> dict:
    shutil.rmtree(home)  # a fresh workspace: no MLflow schema yet
    cfg = home.parent / "cfg.yaml"
    procs = [spawn(home, "stage", "run", "image_shards", "--config", str(cfg)) for _ in range(2)]
    outs = [p.communicate(timeout=300)[0] for p in procs]
    codes = [p.returncode for p in procs]
    ok = codes == [0, 0] and not any("Traceback" in o for o in outs)
    return row("two `stage run image_shards` at once, fresh workspace", f"{codes[0]},{codes[1]}",
               ok, len(manifests(home, "image_shards")) == 1, None)  # fmt: skip


@case
def dead_servers(home: Path) -> dict:
    cfg = home.parent / "cfg.yaml"
    p1 = stage(home, cfg, "image_shards", MLFLOW_TRACKING_URI="http://127.0.0.1:9")
    p2 = cli(home, "flow", "run", "data", "--config", str(cfg),
             PREFECT_API_URL="http://127.0.0.1:9/api")  # fmt: skip
    return row("MLFLOW_TRACKING_URI, PREFECT_API_URL on a dead port",
               f"{p1.returncode},{p2.returncode}", clean(p1, (2,)) and clean(p2, (2,)),
               len(manifests(home, "image_shards")) == 1,
               one_error(p1, "MLFLOW_TRACKING_URI") and one_error(p2, "PREFECT_API_URL"))  # fmt: skip


@case
def signals_mid_training(home: Path) -> dict:
    cfg = home.parent / "cfg.yaml"
    results = []
    for sig, steps in ((signal.SIGINT, 300), (signal.SIGTERM, 400)):
        proc = spawn(home, *train_args(cfg, "pretrain_byol.train.ckpt_every=1000",
                                       f"pretrain_byol.train.max_steps={steps}"))  # fmt: skip
        wait_for(lambda: any((home / "artifacts").glob("pretrain_byol/.partial-*/.mlflow_run_id")))
        time.sleep(8)
        proc.send_signal(sig)
        out = proc.communicate(timeout=120)[0]
        results.append((proc.returncode, ckpt_step(home), "Traceback" in out))
    p = cli(home, *train_args(cfg, "pretrain_byol.train.max_steps=400"))
    steps = [s for _, s, _ in results]
    kept = all(s > 0 for s in steps) and ("[resuming]" in p.stdout or "[continuing]" in p.stdout)
    return row(f"Ctrl-C, then SIGTERM mid-run (checkpoints at steps {steps[0]}, {steps[1]})",
               ",".join(str(c) for c, _, _ in results),
               all(c == 130 and not tb for c, _, tb in results) and clean(p), kept, None)  # fmt: skip


@case
def gc_during_a_run(home: Path) -> dict:
    cfg = home.parent / "cfg.yaml"
    record_flow_run(home)
    proc = spawn(home, *train_args(cfg, "pretrain_byol.train.max_steps=30"))
    wait_for(lambda: ckpt_step(home) >= 5)
    g = cli(home, "gc")
    out = proc.communicate(timeout=300)[0]
    shards = manifests(home, "image_shards")
    survived = proc.returncode == 0 and "Traceback" not in out and clean(g)
    return row("`correlearn gc` while training reads the shards", proc.returncode, survived,
               len(shards) == 1 and "in use" in g.stdout and len(manifests(home, "pretrain_byol")) == 1,
               None)  # fmt: skip


@case
def raise_the_budget(home: Path) -> dict:
    cfg = home.parent / "cfg.yaml"
    p1 = cli(home, *train_args(cfg, "pretrain_byol.train.max_steps=5"))
    p2 = cli(home, *train_args(cfg, "pretrain_byol.train.max_steps=10"))
    ms = sorted(m["stopped_at_step"] for m in manifests(home, "pretrain_byol"))
    kept = ms == [5, 10] and "from step 5" in p2.stdout
    return row("max_steps=5, then max_steps=10", f"{p1.returncode},{p2.returncode}",
               clean(p1) and clean(p2), kept, None)  # fmt: skip


@case
def disk_full(home: Path) -> dict:
    small = home.parent / "small"
    with tmpfs(small, "8m") as mounted:
        if not mounted:
            return skipped("disk full")
        shutil.copytree(
            home, small / "home", dirs_exist_ok=True, ignore=shutil.ignore_patterns("artifacts")
        )
        data = davis_copy(home.parent / "d", seqs=SEQS_ALL, n=200)
        cfg = home.parent / "big.yaml"
        cfg.write_text(
            f"datasets:\n  d: {{root: {data}, layout: davis}}\nimage_shards: {{dataset: d}}\n"
        )
        p = stage(small / "home", cfg, "image_shards")
        none = not manifests(small / "home", "image_shards")
        return row("image shards (40 MB) onto an 8 MiB tmpfs", p.returncode, clean(p, (2,)), none,
                   one_error(p, "No space left on device"))  # fmt: skip
