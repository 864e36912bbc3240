"""The learning bench: does every method learn its own task on videos it never trained on?

Each method's flow runs on real video through the CLI (``correlearn flow run <method> --json``),
with ``data_specs/learning.yaml``: training on a DAVIS-layout folder minus the held-out sequences
of ``data/davis-heldout``, evaluation on those held-out sequences only. For each method it prints
one row (step budgets, so the same machine prints the same table):

- the held-out pretext metric of the method's own task: learned / untrained init at seeds 0 and 1
  / trivial predictor, and whether it beats the init by more than the seed spread and the trivial
  predictor;
- the k-NN probe on held-out frames: learned / random init;
- held-out label-propagation J&F: learned / random init (seeds) / BN-calibrated init;
- the wall time of the method's flow on this machine.

It draws the pretext curve (learned against the inits and the trivial predictor) and the J&F
curve against steps into one picture.

Data: ``--data DIR`` (any DAVIS-layout folder); by default the DAVIS 2016 training sequences of the
shared data folder beside the repository (``../shared/data/davis2016-train``), else the embedded
``data/davis-mini``. Run: ``make learning`` or
``.venv/bin/python bench/learning.py [--data DIR] [--methods vfs cim] [--home DIR] [--set K=V]``;
``--gpu`` trains VFS ResNet-18 and SiamMAE ViT-S/16 at 224 px in bf16 and propagates at 480p.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from correlearn.demo_tables import MethodRow, method_rows  # noqa: E402
from correlearn.pretrain import METHODS as REGISTRY  # noqa: E402
from correlearn.records import FlowRun  # noqa: E402

HELDOUT = REPO / "data" / "davis-heldout"
DEFAULT_DATA = [REPO.parent / "shared" / "data" / "davis2016-train", REPO / "data" / "davis-mini"]
METHODS = list(REGISTRY)  # every registered method has a flow of the same name

# ``--gpu``: VFS ResNet-18 and SiamMAE ViT-S/16 at 224 px in bf16 on one GPU, label propagation at
# 480p. Sized for about 8 minutes on an H100-class GPU; not yet timed on one.
GPU = {
    "pretrain_vfs": {
        "method": {"image_size": 224},
        "train": {"batch_size": 32, "epochs": 600, "max_steps": 600, "num_workers": 8,
                  "amp": "bf16"},
    },
    "pretrain_siammae": {
        "method": {"backbone": "vit_small_patch16", "image_size": 224, "backbone_kwargs": {},
                   "decoder_dim": 512, "decoder_depth": 4, "decoder_heads": 16},
        "train": {"batch_size": 128, "epochs": 800, "max_steps": 800, "num_workers": 8,
                  "amp": "bf16"},
        "optim": {"base_lr": 1.5e-4, "lr_scaling": "linear_256", "warmup_steps": 40},
    },
    "eval_label_propagation": {"params": {"short_side": 480}, "max_frames": None},
}  # fmt: skip


def merge(base: dict, extra: dict) -> dict:
    """``base`` with ``extra`` merged in, nested mappings key by key."""
    out = dict(base)
    for k, v in extra.items():
        out[k] = merge(out.get(k) or {}, v) if isinstance(v, dict) and v else v
    return out


def sequences(root: Path) -> list[str]:
    """Sequence folders of a DAVIS-layout root."""
    return sorted(p.name for p in (root / "JPEGImages" / "480p").iterdir() if p.is_dir())


def write_config(data: Path, home: Path, gpu: bool = False) -> tuple[Path, list[str]]:
    """``learning.yaml`` with ``datasets`` pointing at the data minus the held-out sequences."""
    cfg = yaml.safe_load((REPO / "data_specs" / "learning.yaml").read_text())
    if gpu:
        cfg = merge(cfg, GPU)
    held = set(sequences(HELDOUT))
    train = [s for s in sequences(data) if s not in held]
    if not train:
        sys.exit(f"error: {data}: no sequence outside the held-out set")
    cfg["datasets"]["learn_train"] = {"root": str(data.resolve()), "layout": "davis",
                                      "sequences": train}  # fmt: skip
    cfg["datasets"]["davis_heldout"] = {"root": str(HELDOUT), "layout": "davis"}
    home.mkdir(parents=True, exist_ok=True)
    path = home / "learning.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path, train


def run_flow(method: str, config: Path, home: Path, sets: list[str]) -> tuple[FlowRun, float]:
    """One method flow through the CLI; its FlowRun and wall seconds."""
    cmd = [
        sys.executable,
        "-m",
        "app.cli",
        "flow",
        "run",
        method,
        "--config",
        str(config),
        "--json",
    ]
    for s in sets:
        cmd += ["--set", s]
    env = {**os.environ, "CORRELEARN_HOME": str(home), "OMP_NUM_THREADS": "2"}
    t0 = time.monotonic()
    out = subprocess.run(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, text=True, check=True)
    seconds = time.monotonic() - t0
    last = out.stdout.strip().splitlines()[-1]  # --json: the flow run is the last line
    return FlowRun.from_dict(json.loads(last)), seconds


def _f(v: float | None, spec: str = ".3f") -> str:
    return "-" if v is None else format(v, spec)


def row_line(method: str, r: MethodRow, minutes: float) -> str:
    """One Markdown row of the bench table."""
    p = r.pretext
    pretext = "-" if p is None else (
        f"{p.metric} {p.learned:.3f} / " + " / ".join(f"{v:.3f}" for v in p.inits)
        + " / " + ", ".join(f"{k} {v:.3f}" for k, v in p.trivial.items())
    )  # fmt: skip
    verdict = "-" if p is None else ("yes" if p.learned_task else "no")
    rand = " / ".join(_f(v) for v in r.random_jf) or "-"
    jf_gain = "-" if r.gain is None or r.seed_spread is None else (
        "yes" if r.gain > r.seed_spread else "no"
    )  # fmt: skip
    return (
        f"| {method} | {_f(r.steps, 'd') if r.steps else '-'} | {pretext} | {verdict} "
        f"| {_f(r.knn_top1, '.1f')} / {_f(r.knn_random_top1, '.1f')} "
        f"| {_f(r.jf)} / {rand} / {_f(r.bn_init_jf)} | {jf_gain} | {minutes:.1f} |"
    )


HEADER = (
    "| method | steps | held-out pretext: learned / init s0 / s1 / trivial | learned its task? "
    "| k-NN top-1: learned / random | J&F: learned / random s0 / s1 / BN-calibrated "
    "| J&F beyond seed spread? | wall min |\n|---|---|---|---|---|---|---|---|"
)


def draw(rows: list[tuple[str, MethodRow]], path: Path) -> None:
    """Pretext (top) and J&F (bottom) against steps, one column per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, len(rows), figsize=(3.2 * len(rows), 5.6), squeeze=False)
    for col, (method, r) in enumerate(rows):
        top, bottom = axes[0][col], axes[1][col]
        p = r.pretext
        if p is not None and p.curve:
            xs, ys = zip(*p.curve, strict=True)
            top.plot(xs, ys, "o-", color="tab:blue", label="learned")
            for i, v in enumerate(p.inits):
                top.axhline(
                    v, color="grey", ls="--", lw=1, label="init (seeds)" if i == 0 else None
                )
            for k, v in p.trivial.items():
                top.axhline(v, color="tab:red", ls=":", lw=1, label=k)
            top.set_title(f"{method}: {p.metric}", fontsize=9)
            top.legend(fontsize=7)
        pts = [(s, v) for s, v in r.curve if s is not None and v is not None]
        if pts:
            xs, ys = zip(*pts, strict=True)
            bottom.plot(xs, ys, "o-", color="tab:green", label="learned")
        for i, v in enumerate(r.random_jf):
            bottom.axhline(v, color="grey", ls="--", lw=1, label="random init" if i == 0 else None)
        if r.bn_init_jf is not None:
            bottom.axhline(r.bn_init_jf, color="tab:orange", ls=":", lw=1, label="BN-calibrated")
        bottom.set_title(f"{method}: held-out J&F", fontsize=9)
        bottom.set_xlabel("step")
        bottom.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, help="DAVIS-layout training folder")
    ap.add_argument("--methods", nargs="+", default=METHODS, choices=METHODS)
    ap.add_argument("--home", type=Path, default=REPO / ".correlearn-learning")
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--picture", type=Path, default=REPO / "docs" / "learning.png")
    ap.add_argument("--gpu", action="store_true", help="VFS R18 and SiamMAE ViT-S/16, 224 px, bf16")
    args = ap.parse_args()
    if args.gpu and args.methods == METHODS:
        args.methods = ["vfs", "siammae"]
    data = args.data or next((d for d in DEFAULT_DATA if (d / "JPEGImages").is_dir()), None)
    if data is None or not (data / "JPEGImages" / "480p").is_dir():
        sys.exit(f"error: {data}: not a DAVIS-layout folder (JPEGImages/480p)")
    config, train = write_config(data, args.home, args.gpu)
    print(f"training on {len(train)} sequences of {data}; held out: {sequences(HELDOUT)}")
    rows = []
    for method in args.methods:
        run, seconds = run_flow(method, config, args.home, args.sets)
        mine = [r for r in method_rows(run) if r.checkpoint == method] or method_rows(run)[-1:]
        rows.append((method, mine[0], seconds / 60))
        print(row_line(method, mine[0], seconds / 60), flush=True)
    print("\n" + HEADER)
    for method, r, minutes in rows:
        print(row_line(method, r, minutes))
    draw([(m, r) for m, r, _ in rows], args.picture)
    print(f"\npicture: {args.picture}")


if __name__ == "__main__":
    main()
