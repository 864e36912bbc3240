"""The fault suite (`make faults`): the real CLI against hostile but ordinary input.

Each case works in a fresh workspace (a copy of a small template: tiny DAVIS shards and an MLflow
store) on a few frames of ``data/davis-mini``, runs ``correlearn`` as a subprocess and checks three
things: the process survived (a clean exit code, no traceback), nothing was lost (finished
artifacts intact, progress kept, no half-written artifact that looks finished), and an error names
the file or key at fault. It prints one table and ends with ``N passed, M failed``; exit code 1 if
any case failed. About 15-20 minutes on 2 cores. The cases of data and files are here; those of
interrupted and concurrent runs in ``faults_runs.py``, of evaluation, export and settings in
``faults_eval.py``; the harness in ``fault_harness.py``.

    python bench/faults.py [CASE ...]      # all cases, or only the named ones
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import faults_eval  # noqa: F401 - registers the evaluation and configuration cases
import faults_runs  # noqa: F401 - registers the interrupted, concurrent and budgeted runs
from fault_harness import (
    CASES,
    DAVIS,
    LOG,
    REPO,
    case,
    clean,
    cli,
    davis_copy,
    manifests,
    one_error,
    row,
    stage,
    train_args,
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
    bad = ["pretrain_byol.train.seed=-1", "pretrain_byol.train.device=banana"]
    ps = [cli(home, *train_args(cfg, b)) for b in bad]
    named = all(one_error(p, b.split("=")[0]) for p, b in zip(ps, bad, strict=True))
    partial = list((home / "artifacts").glob("pretrain_byol/.partial-*"))
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
    p = cli(home, *train_args(cfg, "pretrain_byol.train.max_steps=2"))
    return row("index.parquet rows point at ../../etc/passwd", p.returncode, clean(p),
               refused and "[corrupt] image_shards" in p.stderr, "index.parquet" in p.stderr)  # fmt: skip


@case
def malicious_checkpoint(home: Path) -> dict:
    cfg = home.parent / "cfg.yaml"
    p1 = cli(home, *train_args(cfg, "pretrain_byol.train.max_steps=2"))
    marker = home.parent / "pwned"
    payload = (
        "import os, pickle, torch\n"
        "class P:\n    def __reduce__(self): return (os.system, ('touch " + str(marker) + "',))\n"
        "torch.save({'step': 2, 'x': P()}, __import__('sys').argv[1])\n"
    )
    last = next((home / "artifacts" / "pretrain_byol").glob(".partial-*/train/last.pt"))
    last.unlink()  # a new file: the snapshot's hard link keeps the real checkpoint
    subprocess.run([sys.executable, "-c", payload, str(last)], check=True, cwd=REPO)
    p2 = cli(home, *train_args(cfg, "pretrain_byol.train.max_steps=4"))
    snap = manifests(home, "pretrain_byol")
    return row("a pickle that runs os.system as train/last.pt", p2.returncode,
               clean(p1) and clean(p2, (2,)) and not marker.exists(),
               len(snap) == 1, one_error(p2, "last.pt"))  # fmt: skip


# --- template and driver -----------------------------------------------------------------------


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
