"""Fault cases of evaluation, export, budgets and settings (registered into ``bench/faults.py``).

Each case runs the real CLI in a fresh workspace, as the other cases do (``bench/fault_harness.py``).
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from fault_harness import (
    DAVIS,
    REPO,
    case,
    ckpt_step,
    clean,
    cli,
    manifests,
    one_error,
    row,
    skipped,
    spawn,
    tmpfs,
    train_args,
    wait_for,
)
from PIL import Image

from correlearn.models import build_backbone

EVAL = ["--set", "params.short_side=64", "--set", "max_frames=4"]


def davis_with_masks(dst: Path, seqs=("bear",), n: int = 4) -> Path:
    """The first ``n`` frames and masks of ``seqs`` in the DAVIS layout."""
    for seq in seqs:
        for part, ext in (("JPEGImages", "jpg"), ("Annotations", "png")):
            out = dst / part / "480p" / seq
            out.mkdir(parents=True)
            for f in sorted((DAVIS / part / "480p" / seq).glob(f"*.{ext}"))[:n]:
                shutil.copy(f, out / f.name)
    return dst


def weights(path: Path, nan: bool = False) -> Path:
    """A random ResNet-18 as a torchvision-named file (with a NaN when ``nan``)."""
    torch.manual_seed(0)
    state = build_backbone("resnet18").export_state_dict()
    if nan:
        state["layer1.0.conv1.weight"][0, 0, 0, 0] = float("nan")
    torch.save(state, path)
    return path


def eval_davis(home: Path, ckpt: Path, root: Path, *extra: str) -> subprocess.CompletedProcess:
    return cli(home, "eval", "davis", "--checkpoint", str(ckpt), "--root", str(root), *EVAL,
               *extra)  # fmt: skip


def no_partials(home: Path) -> bool:
    return not list((home / "artifacts").glob("*/.partial-*"))


@case
def masks_changed_after_a_run(home: Path) -> dict:
    data = davis_with_masks(home.parent / "d")
    ckpt = weights(home.parent / "r18.pt")
    p1 = eval_davis(home, ckpt, data)
    mask = sorted((data / "Annotations" / "480p" / "bear").iterdir())[2]
    Image.fromarray(np.roll(np.asarray(Image.open(mask)), 40, axis=1)).save(mask)
    p2 = eval_davis(home, ckpt, data)
    runs = manifests(home, "eval_label_propagation")
    kept = len(runs) == 2 and "(cache hit)" not in p2.stdout
    return row("eval davis, shift one mask, eval davis again", f"{p1.returncode},{p2.returncode}",
               clean(p1) and clean(p2), kept, None)  # fmt: skip


def _truncate(p: Path) -> None:
    p.write_bytes(p.read_bytes()[:600])


def _half(p: Path) -> None:
    im = Image.open(p)
    im.resize((im.width // 2, im.height // 2), Image.NEAREST).save(p)


def _damage(fn: Callable[[Path], object], culprit: str | None) -> Callable[[Path], str | None]:
    """A defect: ``fn(root)`` makes it; ``culprit`` is the file the error must name (None: the
    folder must be accepted)."""
    return lambda root: (fn(root), culprit)[1]


DEFECTS: dict[str, Callable[[Path], str | None]] = {
    "no Annotations": _damage(lambda r: shutil.rmtree(r / "Annotations"), "Annotations/480p"),
    "no first mask": _damage(lambda r: _first(r, "Annotations").unlink(), "00000.png"),
    "stray file": _damage(
        lambda r: (_first(r, "JPEGImages").parent / "a.txt").write_text("x"), None
    ),  # fmt: skip
    ".JPG and .jpeg": _damage(lambda r: _rename(r, ".JPG", ".jpeg"), None),
    "a PNG frame": _damage(lambda r: _png_frame(r), None),
    "truncated frame": _damage(lambda r: _truncate(_nth(r, "JPEGImages", 1)), "00001.jpg"),
    "zero-byte frame": _damage(lambda r: _nth(r, "JPEGImages", 2).write_bytes(b""), "00002.jpg"),
    "RGB mask": _damage(lambda r: _rgb(_first(r, "Annotations")), "00000.png"),
    "corrupt mask": _damage(
        lambda r: _nth(r, "Annotations", 1).write_bytes(b"x" * 99), "00001.png"
    ),  # fmt: skip
    "mask size": _damage(lambda r: _half(_nth(r, "Annotations", 2)), "00002.png"),
    "frame size": _damage(lambda r: _half(_nth(r, "JPEGImages", 3)), "00003.jpg"),
}


def _rgb(p: Path) -> None:
    Image.open(p).convert("RGB").save(p)


def _nth(root: Path, part: str, i: int) -> Path:
    return sorted((root / part / "480p" / "bear").iterdir())[i]


def _first(root: Path, part: str) -> Path:
    return _nth(root, part, 0)


def _rename(root: Path, *suffixes: str) -> None:
    for i, suffix in enumerate(suffixes, 1):
        f = _nth(root, "JPEGImages", i)
        f.rename(f.with_suffix(suffix))


def _png_frame(root: Path) -> None:
    f = _nth(root, "JPEGImages", 3)
    Image.open(f).save(f.with_suffix(".png"))
    f.unlink()


@case
def user_davis_folder(home: Path) -> dict:
    ckpt = weights(home.parent / "r18.pt")
    failed = []
    for i, (name, damage) in enumerate(DEFECTS.items()):
        data = davis_with_masks(home.parent / f"d{i}")
        culprit = damage(data)
        p = eval_davis(home, ckpt, data)
        ok = clean(p) if culprit is None else one_error(p, culprit) and clean(p, (2,))
        if not (ok and no_partials(home)):
            failed.append(name)
    return row(f"eval davis on {len(DEFECTS)} user folders, each with one defect"
               + (f" (failed: {failed})" if failed else ""), "0/2", not failed, no_partials(home),
               not failed)  # fmt: skip


@case
def nan_weights(home: Path) -> dict:
    data = davis_with_masks(home.parent / "d")
    p = eval_davis(home, weights(home.parent / "nan.pt", nan=True), data)
    return row("eval davis of a checkpoint with a NaN weight", p.returncode, clean(p, (2,)),
               no_partials(home), one_error(p, "NaN or Inf", "layer1.0.conv1.weight"))  # fmt: skip


@case
def smaller_budget_after_an_interrupt(home: Path) -> dict:
    cfg = home.parent / "cfg.yaml"
    proc = spawn(home, *train_args(cfg, "pretrain_byol.train.max_steps=200"))
    wait_for(lambda: ckpt_step(home) >= 10)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=120)
    at = ckpt_step(home)
    p1 = cli(home, *train_args(cfg, "pretrain_byol.train.max_steps=2"))
    p2 = cli(home, *train_args(cfg, "pretrain_byol.train.max_steps=12"))
    kept = at >= 10 and f"from step {at}" in p2.stdout + p2.stderr
    return row(f"Ctrl-C at step {at} of 200, then max_steps=2, then max_steps=12",
               f"{p1.returncode},{p2.returncode}", clean(p1) and clean(p2), kept, None)  # fmt: skip


@case
def nested_settings(home: Path) -> dict:
    cfg = home.parent / "cfg.yaml"
    bad = {
        "pretrain_byol.method.image_size=0": "pretrain_byol.method.image_size",
        "pretrain_byol.method.backbone=resnet99": "unknown backbone 'resnet99'",
        "pretrain_byol.train.max_steps=0": "pretrain_byol.train.max_steps",
        "pretrain_byol=3": "must be a mapping",
    }
    named = all(
        one_error(p := cli(home, *train_args(cfg, s)), "--set: ", needle) and clean(p, (2,))
        for s, needle in bad.items()
    )
    return row("4 bad nested --set values for a training stage", "2", True,
               no_partials(home) and not manifests(home, "pretrain_byol"), named)  # fmt: skip


@case
def export_onto_a_full_disk(home: Path) -> dict:
    small = home.parent / "small"
    with tmpfs(small, "2m") as mounted:
        if not mounted:
            return skipped("export onto a full disk")
        old = small / "model.pth"
        old.write_bytes(b"the old export" * 1000)
        before = old.read_bytes()
        imp = cli(home, "import", str(weights(home.parent / "r18.pt")), "--json")
        key = json.loads(imp.stdout.strip().splitlines()[-1])["key"]
        p = cli(home, "export", key, "--format", "torchvision", "--out", str(old), "--overwrite")
        kept = old.read_bytes() == before and [x.name for x in small.iterdir()] == ["model.pth"]
        return row("export 45 MB over an existing file on a 2 MiB tmpfs", p.returncode,
                   clean(p, (2,)), kept, one_error(p, "No space left on device"))  # fmt: skip


@case
def read_only_workspace(home: Path) -> dict:
    ro = home.parent / "ro"
    with tmpfs(ro, "64m") as mounted:
        if not mounted:
            return skipped("a read-only workspace")
        shutil.copytree(home, ro / "home", symlinks=True)
        subprocess.run(["mount", "-o", "remount,ro", str(ro)], check=True)
        status = cli(ro / "home", "status")
        dry = cli(ro / "home", "gc", "--dry-run")
        data = davis_with_masks(home.parent / "d")
        ev = eval_davis(ro / "home", weights(home.parent / "r18.pt"), data)
        return row("status, gc --dry-run and eval on a read-only workspace",
                   f"{status.returncode},{dry.returncode},{ev.returncode}",
                   clean(status) and clean(dry) and clean(ev, (2,)), "image_shards" in status.stdout,
                   one_error(ev, "Read-only file system"))  # fmt: skip


@case
def workspace_is_a_file(home: Path) -> dict:
    f = home.parent / "not-a-folder"
    f.write_text("x")
    p = cli(f, "status")
    return row("CORRELEARN_HOME pointing at a file", p.returncode, clean(p, (2,)), f.read_text() == "x",
               one_error(p, f"CORRELEARN_HOME={f}: not a folder"))  # fmt: skip


def _flow_config(home: Path) -> Path:
    """The demo's config with its datasets at absolute paths, beside the case's workspace."""
    import yaml

    raw = yaml.safe_load((REPO / "data_specs" / "demo.yaml").read_text())
    for spec in raw["datasets"].values():
        spec["root"] = str((REPO / "data_specs" / spec["root"]).resolve())
    cfg = home.parent / "flow.yaml"
    cfg.write_text(yaml.safe_dump(raw))
    return cfg


def _signal_in_flow(home: Path, stage: str, sets: list[str]) -> tuple[int | None, float, bool]:
    """``flow run orl``; SIGTERM once ``stage`` trains; (exit code, seconds to exit, traceback)."""
    args = ["flow", "run", "orl", "--config", str(_flow_config(home))]
    for s in sets:
        args += ["--set", s]
    proc = spawn(home, *args)
    side = home / "artifacts" / stage
    started = wait_for(lambda: any(side.glob(".partial-*/train/last.pt.json")), timeout=900)
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        out = proc.communicate(timeout=180)[0]
    except subprocess.TimeoutExpired:
        proc.kill()
        out = proc.communicate()[0]
    return (proc.returncode if started else None), time.monotonic() - t0, "Traceback" in out


@case
def signals_inside_a_flow(home: Path) -> dict:
    long = ["train.max_steps=400", "train.epochs=400", "train.ckpt_every=2", "val.dataset=null"]
    runs = {
        "pretrain_byol": [f"pretrain_byol.{s}" for s in long],
        "pretrain_orl": ["pretrain_byol.train.max_steps=4", "pretrain_byol.val.dataset=null"]
        + [f"pretrain_orl.{s}" for s in long],
    }
    results = {}
    for i, (stage, sets) in enumerate(runs.items()):
        ws = home.parent / f"flow{i}" / "home"
        shutil.copytree(home, ws, symlinks=True)
        results[stage] = _signal_in_flow(ws, stage, sets)
    codes = ",".join(str(c) for c, _, _ in results.values())
    secs = ", ".join(f"{s} {t:.0f} s" for s, (_, t, _) in results.items())
    ok = all(c == 130 and t < 60 and not tb for c, t, tb in results.values())
    return row(f"SIGTERM to `flow run orl` in each training stage (exit after: {secs})", codes,
               ok, ok, None)  # fmt: skip
