"""The fault suite's harness: fresh workspaces, the real CLI as a subprocess, and the checks.

Cases register with :func:`case` (``bench/faults.py`` and ``bench/faults_eval.py``); each returns
one :func:`row`: what was done, the exit code, whether the process survived, whether nothing was
lost, and whether the error named the file or key at fault.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DAVIS = REPO / "data" / "davis-mini"
TRAIN = [  # a tiny BYOL: ResNet-18 at 32 px, batch 4, a 400-step schedule
    "pretrain_byol.method.backbone=resnet18", "pretrain_byol.method.image_size=32",
    "pretrain_byol.method.proj_hidden_dim=64", "pretrain_byol.method.pred_hidden_dim=64",
    "pretrain_byol.train.batch_size=4", "pretrain_byol.train.epochs=400",
    "pretrain_byol.train.steps_per_epoch=1", "pretrain_byol.train.num_workers=0",
    "pretrain_byol.train.device=cpu", "pretrain_byol.train.ckpt_every=5",
]  # fmt: skip
SEQS_ALL = tuple(sorted(p.name for p in (DAVIS / "JPEGImages" / "480p").iterdir()))
CASES: dict[str, Callable[[Path], dict]] = {}
LOG: list[str] = []  # the CLI calls of the running case, shown when it fails


def case(fn: Callable[[Path], dict]) -> Callable[[Path], dict]:
    CASES[fn.__name__] = fn
    return fn


# --- helpers -------------------------------------------------------------------------------------


def env(home: Path, **extra: str) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "PREFECT_API_URL")}
    e.update(CORRELEARN_HOME=str(home), PREFECT_HOME=str(home / "prefect"), OMP_NUM_THREADS="1",
             PYTHONWARNINGS="default", DO_NOT_TRACK="1", MLFLOW_ENABLE_TELEMETRY="false", **extra)  # fmt: skip
    return e


def cli_args(*args: str) -> list[str]:
    return [sys.executable, "-m", "app.cli", *args]


def cli(home: Path, *args: str, timeout: float = 300, **extra: str) -> subprocess.CompletedProcess:
    p = subprocess.run(cli_args(*args), env=env(home, **extra), cwd=REPO, capture_output=True,
                       text=True, timeout=timeout)  # fmt: skip
    LOG.append(
        f"$ correlearn {' '.join(args[:3])} -> {p.returncode}\n{p.stdout[-600:]}{p.stderr[-900:]}"
    )
    return p


def spawn(home: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(cli_args(*args), env=env(home), cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)  # fmt: skip


def stage(home: Path, cfg: Path, name: str, *sets: str, **kw) -> subprocess.CompletedProcess:
    args = ["stage", "run", name, "--config", str(cfg)]
    for s in sets:
        args += ["--set", s]
    return cli(home, *args, **kw)


def train_args(cfg: Path, *sets: str) -> list[str]:
    args = ["stage", "run", "pretrain_byol", "--config", str(cfg)]
    for s in [*TRAIN, *sets]:
        args += ["--set", s]
    return args


def write_config(root: Path, data: Path, layout: str = "davis") -> Path:
    cfg = root / "cfg.yaml"
    cfg.write_text(f"datasets:\n  d: {{root: {data}, layout: {layout}}}\n"
                   "image_shards: {dataset: d, max_short_side: 64}\n"
                   "video_shards: {dataset: d, max_short_side: 64}\n")  # fmt: skip
    return cfg


def davis_copy(dst: Path, seqs=("bear", "surf"), n: int = 6) -> Path:
    for seq in seqs:
        out = dst / "JPEGImages" / "480p" / seq
        out.mkdir(parents=True)
        for f in sorted((DAVIS / "JPEGImages" / "480p" / seq).glob("*.jpg"))[:n]:
            shutil.copy(f, out / f.name)
    return dst


def manifests(home: Path, name: str) -> list[dict]:
    """The finished artifacts of a stage, oldest first (so ``[-1]`` is the newest)."""
    d = home / "artifacts" / name
    found = [json.loads(p.read_text()) for p in d.glob("*/manifest.json")] if d.is_dir() else []
    return sorted(found, key=lambda m: m.get("finished_at") or "")


def clean(p: subprocess.CompletedProcess | None, codes=(0,)) -> bool:
    return p is not None and p.returncode in codes and "Traceback" not in (p.stderr or "")


def one_error(p: subprocess.CompletedProcess, *needles: str) -> bool:
    errs = [ln for ln in p.stderr.splitlines() if ln.startswith("error: ")]
    return p.returncode == 2 and len(errs) == 1 and all(n in errs[0] for n in needles)


def wait_for(pred: Callable[[], bool], timeout: float = 240) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.3)
    return False


def ckpt_step(home: Path) -> int:
    for side in (home / "artifacts" / "pretrain_byol").glob(".partial-*/train/last.pt.json"):
        return json.loads(side.read_text())["step"]
    return -1


def row(what: str, code, survived: bool, kept: bool, named: bool | None) -> dict:
    return {"what": what, "code": code, "survived": survived, "kept": kept, "named": named}


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


@contextlib.contextmanager
def tmpfs(folder: Path, size: str) -> Iterator[bool]:
    """Mount a ``size`` tmpfs on ``folder`` (made here) for the block; yields False when it cannot
    (not root, or no mount), so the case reports itself skipped."""
    folder.mkdir()
    if os.geteuid() != 0:
        yield False
        return
    mnt = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                         capture_output=True, text=True)  # fmt: skip
    if mnt.returncode != 0:
        yield False
        return
    try:
        yield True
    finally:
        subprocess.run(["umount", str(folder)], check=False)


def skipped(what: str) -> dict:
    """The row of a case this machine cannot run (a tmpfs needs root)."""
    return row(f"{what} (needs root for a tmpfs)", "-", True, True, None) | {"skip": True}
