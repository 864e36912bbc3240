"""The fault suite (`make faults`, issue 11): the real CLI against hostile but ordinary input.

Each case works in a fresh workspace (a copy of a small template: tiny DAVIS shards and an MLflow
store) on a few frames of ``data/davis-mini``, runs ``correlearn`` as a subprocess and checks three
things: the process survived (a clean exit code, no traceback), nothing was lost (finished
artifacts intact, progress kept, no half-written artifact that looks finished), and an error names
the file or key at fault. It prints one table and ends with ``N passed, M failed``; exit code 1 if
any case failed. About 5-10 minutes on 2 cores.

    python bench/faults.py [CASE ...]      # all cases, or only the named ones
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import faults_eval  # noqa: F401 - registers the evaluation and configuration cases
from fault_harness import (
    CASES,
    DAVIS,
    LOG,
    REPO,
    SEQS_ALL,
    case,
    ckpt_step,
    clean,
    cli,
    davis_copy,
    env,
    manifests,
    one_error,
    row,
    spawn,
    stage,
    train_args,
    wait_for,
    write_config,
)

# --- cases -----------------------------------------------------------------------------------


@case
def corrupt_and_empty_image(home: Path) -> dict:
    data = davis_copy(home.parent / "d", seqs=("bear",))
    frames = sorted((data / "JPEGImages" / "480p" / "bear").glob("*.jpg"))
    frames[1].write_bytes(frames[1].read_bytes()[:700])
    frames[2].write_bytes(b"")
    p = stage(home, write_config(home.parent, data), "image_shards")
    m = (manifests(home, "image_shards") or [{}])[-1]
    skipped = {Path(s["item"]).name for s in m.get("skipped", [])}
    named = frames[1].name in p.stderr and frames[2].name in p.stderr
    ok = skipped == {frames[1].name, frames[2].name} and m["counts"]["images"] == 4
    return row("1 truncated + 1 zero-byte JPEG of 6", p.returncode, clean(p), ok, named)


@case
def missing_and_empty_dataset(home: Path) -> dict:
    (home.parent / "empty" / "JPEGImages" / "480p").mkdir(parents=True)
    p1 = stage(home, write_config(home.parent, home.parent / "nowhere"), "image_shards")
    p2 = stage(home, write_config(home.parent, home.parent / "empty"), "image_shards")
    named = one_error(p1, "nowhere") and one_error(p2, "empty")
    kept = len(manifests(home, "image_shards")) == 1  # the template's, and nothing new
    return row("dataset root missing; dataset empty", f"{p1.returncode},{p2.returncode}",
               clean(p1, (2,)) and clean(p2, (2,)), kept, named)  # fmt: skip


@case
def duplicate_item_keys(home: Path) -> dict:
    src = sorted((DAVIS / "JPEGImages" / "480p" / "bear").glob("*.jpg"))[0]
    data = home.parent / "imgs"
    data.mkdir()
    shutil.copy(src, data / "x.jpg")
    from PIL import Image

    Image.open(src).save(data / "x.png")
    p = stage(home, write_config(home.parent, data, "image_folder"), "image_shards")
    return row("x.jpg and x.png in one image folder", p.returncode, clean(p, (2,)),
               len(manifests(home, "image_shards")) == 1, one_error(p, "x.jpg", "x.png"))  # fmt: skip


@case
def garbage_video(home: Path) -> dict:
    data = home.parent / "videos"
    data.mkdir()
    (data / "garbage.mp4").write_bytes(os.urandom(4096))
    import cv2
    import numpy as np

    w = cv2.VideoWriter(str(data / "ok.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for t in range(5):
        w.write(np.full((48, 64, 3), t * 40, np.uint8))
    w.release()
    p = stage(home, write_config(home.parent, data, "video_files"), "video_shards")
    m = (manifests(home, "video_shards") or [{}])[-1]
    kept = m.get("counts", {}).get("videos") == 1 and len(m.get("skipped", [])) == 1
    return row("a random-bytes .mp4 next to a good video", p.returncode, clean(p), kept,
               "garbage.mp4" in p.stderr)  # fmt: skip


@case
def bad_config_values(home: Path) -> dict:
    cfg = write_config(home.parent, DAVIS)
    bad = ["pretrain_image.train.seed=-1", "pretrain_image.train.device=banana"]
    ps = [cli(home, *train_args(cfg, b)) for b in bad]
    named = all(one_error(p, b.split("=")[0]) for p, b in zip(ps, bad, strict=True))
    partial = list((home / "artifacts").glob("pretrain_image/.partial-*"))
    return row("train.seed=-1; train.device=banana",
               ",".join(str(p.returncode) for p in ps), all(clean(p, (2,)) for p in ps),
               not partial, named)  # fmt: skip


@case
def truncated_shard_in_store(home: Path) -> dict:
    cfg = home.parent / "cfg.yaml"
    shard = next((home / "artifacts" / "image_shards").glob("*/shard-000000.tar"))
    shard.write_bytes(shard.read_bytes()[:5000])
    p = stage(home, cfg, "image_shards")
    v = cli(home, "artifacts", "verify")
    named = "shard-000000.tar" in p.stderr
    return row("a finished shard truncated, then re-run", p.returncode, clean(p),
               "[corrupt]" in p.stderr and clean(v), named)  # fmt: skip


@case
def same_size_corruption(home: Path) -> dict:
    shard = next((home / "artifacts" / "image_shards").glob("*/shard-000000.tar"))
    data = bytearray(shard.read_bytes())
    data[3000:3100] = bytes(100)
    shard.write_bytes(bytes(data))
    v = cli(home, "artifacts", "verify")
    return row("100 bytes of a shard zeroed (size unchanged)", v.returncode, clean(v, (2,)),
               "corrupt" in v.stderr, "shard-000000.tar" in v.stderr)  # fmt: skip


@case
def shard_path_outside_artifact(home: Path) -> dict:
    import pyarrow as pa
    import pyarrow.parquet as pq

    cfg = home.parent / "cfg.yaml"
    art = next((home / "artifacts" / "image_shards").glob("*/index.parquet"))
    table = pq.read_table(art)
    bad = ["../../../../etc/passwd"] * table.num_rows
    table = table.set_column(table.schema.get_field_index("shard"), "shard", pa.array(bad))
    pq.write_table(table, art)
    from correlearn.data.readers import ShardedImages  # the reader itself refuses it, too
    from correlearn.data.sources import DataError

    try:
        ShardedImages(art.parent)
        refused = False
    except DataError as exc:
        refused = "outside the artifact" in str(exc)
    p = cli(home, *train_args(cfg, "pretrain_image.train.max_steps=2"))
    return row("index.parquet rows point at ../../etc/passwd", p.returncode, clean(p),
               refused and "[corrupt] image_shards" in p.stderr, "index.parquet" in p.stderr)  # fmt: skip


@case
def malicious_checkpoint(home: Path) -> dict:
    cfg = home.parent / "cfg.yaml"
    p1 = cli(home, *train_args(cfg, "pretrain_image.train.max_steps=2"))
    marker = home.parent / "pwned"
    payload = (
        "import os, pickle, torch\n"
        "class P:\n    def __reduce__(self): return (os.system, ('touch " + str(marker) + "',))\n"
        "torch.save({'step': 2, 'x': P()}, __import__('sys').argv[1])\n"
    )
    last = next((home / "artifacts" / "pretrain_image").glob(".partial-*/train/last.pt"))
    last.unlink()  # a new file: the snapshot's hard link keeps the real checkpoint
    subprocess.run([sys.executable, "-c", payload, str(last)], check=True, cwd=REPO)
    p2 = cli(home, *train_args(cfg, "pretrain_image.train.max_steps=4"))
    snap = manifests(home, "pretrain_image")
    return row("a pickle that runs os.system as train/last.pt", p2.returncode,
               clean(p1) and clean(p2, (2,)) and not marker.exists(),
               len(snap) == 1, one_error(p2, "last.pt"))  # fmt: skip


@case
def kill9_mid_training(home: Path) -> dict:
    cfg = home.parent / "cfg.yaml"
    proc = spawn(home, *train_args(cfg, "pretrain_image.train.max_steps=40"))
    reached = wait_for(lambda: ckpt_step(home) >= 10)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    at = ckpt_step(home)
    unfinished = not manifests(home, "pretrain_image")
    p = cli(home, *train_args(cfg, "pretrain_image.train.max_steps=40"))
    m = (manifests(home, "pretrain_image") or [{}])[-1]
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
        proc = spawn(home, *train_args(cfg, "pretrain_image.train.ckpt_every=1000",
                                       f"pretrain_image.train.max_steps={steps}"))  # fmt: skip
        wait_for(lambda: any((home / "artifacts").glob("pretrain_image/.partial-*/.mlflow_run_id")))
        time.sleep(8)
        proc.send_signal(sig)
        out = proc.communicate(timeout=120)[0]
        results.append((proc.returncode, ckpt_step(home), "Traceback" in out))
    p = cli(home, *train_args(cfg, "pretrain_image.train.max_steps=400"))
    steps = [s for _, s, _ in results]
    kept = all(s > 0 for s in steps) and ("[resuming]" in p.stdout or "[continuing]" in p.stdout)
    return row(f"Ctrl-C, then SIGTERM mid-run (checkpoints at steps {steps[0]}, {steps[1]})",
               ",".join(str(c) for c, _, _ in results),
               all(c == 130 and not tb for c, _, tb in results) and clean(p), kept, None)  # fmt: skip


@case
def gc_during_a_run(home: Path) -> dict:
    cfg = home.parent / "cfg.yaml"
    record_flow_run(home)
    proc = spawn(home, *train_args(cfg, "pretrain_image.train.max_steps=30"))
    wait_for(lambda: ckpt_step(home) >= 5)
    g = cli(home, "gc")
    out = proc.communicate(timeout=300)[0]
    shards = manifests(home, "image_shards")
    survived = proc.returncode == 0 and "Traceback" not in out and clean(g)
    return row("`correlearn gc` while training reads the shards", proc.returncode, survived,
               len(shards) == 1 and "in use" in g.stdout and len(manifests(home, "pretrain_image")) == 1,
               None)  # fmt: skip


@case
def raise_the_budget(home: Path) -> dict:
    cfg = home.parent / "cfg.yaml"
    p1 = cli(home, *train_args(cfg, "pretrain_image.train.max_steps=5"))
    p2 = cli(home, *train_args(cfg, "pretrain_image.train.max_steps=10"))
    ms = sorted(m["stopped_at_step"] for m in manifests(home, "pretrain_image"))
    kept = ms == [5, 10] and "from step 5" in p2.stdout
    return row("max_steps=5, then max_steps=10", f"{p1.returncode},{p2.returncode}",
               clean(p1) and clean(p2), kept, None)  # fmt: skip


@case
def disk_full(home: Path) -> dict:
    if os.geteuid() != 0:
        return row("disk full (needs root for a tmpfs)", "-", True, True, None) | {"skip": True}
    small = home.parent / "small"
    small.mkdir()
    mnt = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(small)],
                         capture_output=True, text=True)  # fmt: skip
    if mnt.returncode != 0:
        return row(f"disk full: mount failed ({mnt.stderr.strip()[:40]})", "-", True, True, None) | {
            "skip": True}  # fmt: skip
    try:
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
    finally:
        subprocess.run(["umount", str(small)], check=False)


# --- template and driver -----------------------------------------------------------------------


def record_flow_run(home: Path) -> None:
    """Record one flow run that used nothing in this workspace, so gc has something to keep."""
    code = (
        "from correlearn.tracking import Tracker; from correlearn.workspace import get_workspace\n"
        "import json, pathlib, tempfile\n"
        "t = Tracker(get_workspace()); r = t.start('byol', tags={'flow': 'byol'})\n"
        "p = pathlib.Path(tempfile.mkdtemp()) / 'flow_result.json'\n"
        "p.write_text(json.dumps({'flow': 'byol', 'stages': [{'stage': 'x', 'key': 'y'}]}))\n"
        "t.log_artifact(r, p); t.end(r)\n"
    )
    subprocess.run([sys.executable, "-c", code], env=env(home), cwd=REPO, check=True)


def build_template(root: Path) -> Path:
    data = davis_copy(root / "davis")
    write_config(root, data)
    p = stage(root / "home", root / "cfg.yaml", "image_shards")
    if p.returncode != 0:
        raise SystemExit(f"template failed:\n{p.stdout}\n{p.stderr}")
    return root


def run_case(name: str, template: Path, work: Path) -> dict:
    base = work / name
    base.mkdir()
    # The workspace is copied; the dataset stays where the template's config points, so the
    # template's image_shards artifact (its key includes the dataset root) is a cache hit here.
    shutil.copytree(template / "home", base / "home", symlinks=True)
    shutil.copy(template / "cfg.yaml", base / "cfg.yaml")
    t0 = time.monotonic()
    LOG.clear()
    try:
        res = CASES[name](base / "home")
    except Exception as exc:  # noqa: BLE001 - a crashed case is a failed case
        res = row(f"harness error: {type(exc).__name__}: {exc}"[:70], "-", False, False, False)
    res.update(case=name, seconds=time.monotonic() - t0)
    res["passed"] = res.get("skip") or (
        res["survived"] and res["kept"] and res["named"] is not False
    )
    return res


def table(rows: list[dict]) -> str:
    def yn(v):
        return "-" if v is None else ("yes" if v else "**no**")

    lines = ["| case | what was done | exit code | survived | nothing lost | error names the file |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        lines.append(f"| {r['case']} | {r['what']} | {r['code']} | {yn(r['survived'])} | "
                     f"{yn(r['kept'])} | {yn(r['named'])} |")  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    names = argv or list(CASES)
    unknown = sorted(set(names) - set(CASES))
    if unknown:
        print(f"error: unknown case(s) {unknown}; known: {sorted(CASES)}", file=sys.stderr)
        return 2
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="correlearn-faults-") as tmp:
        template = build_template(Path(tmp) / "template")
        rows = []
        for name in names:
            rows.append(run_case(name, template, Path(tmp)))
            r = rows[-1]
            print(f"{'ok  ' if r['passed'] else 'FAIL'} {name} ({r['seconds']:.0f} s)", flush=True)
            if not r["passed"] and os.environ.get("FAULTS_VERBOSE"):
                print("\n".join(LOG[-2:]), flush=True)
    print()
    print(table(rows))
    passed = sum(bool(r["passed"]) for r in rows)
    print(f"\n{passed} passed, {len(rows) - passed} failed in {time.monotonic() - t0:.0f} s")
    return 0 if passed == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
