"""``correlearn import | export | eval``: checkpoint files in and out, one-command evaluation.

``import FILE`` brings a checkpoint file into the store (stage ``import_checkpoint``, keyed by the
file's SHA-256); ``export KEY --format F`` writes a checkpoint artifact in a format the reference
code loads; ``eval PROTOCOL --checkpoint FILE|KEY --root DATA`` runs the protocol's evaluation
stage on it, through the cache. A bad file is refused before the store or MLflow sees it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from app.metric_tables import metrics_lines
from correlearn.artifacts import ArtifactStore
from correlearn.config import ConfigError, apply_overrides, load_yaml
from correlearn.tracking import check_server
from correlearn.workspace import activate

IMPORT_STAGE = "import_checkpoint"
# protocol -> (evaluation stage, default dataset layout)
PROTOCOLS = {
    "davis": ("eval_label_propagation", "davis"),
    "knn": ("eval_knn", "class_folders"),
    "linear": ("eval_linear", "class_folders"),
    "pose": ("eval_pose", "jhmdb"),
    "parts": ("eval_parts", "vip"),
    "svm": ("eval_svm", "voc07"),
    "tracking": ("eval_tracking", "otb"),
    "finetune": ("eval_finetune", "class_folders"),
}
# Protocols whose stage takes a label-propagation preset.
PRESET_PROTOCOLS = ("davis", "pose", "parts")
HEAD_STAGE = "train_siamfc_head"
PRESETS = ("auto", "vfs_resnet", "crw_resnet", "dino_vit", "siammae_vit")
# Kept literal so that building the parser imports no torch; tests check it equals FORMATS.
FORMAT_NAMES = ("dino", "cim", "vfs", "crw", "moco", "openselfsup", "mae", "torchvision", "timm")


def _pipeline(config: str | None, sections: dict[str, Any], sets: list[str], scope: str | None):
    """A pipeline over ``config`` (or none) with generated ``sections`` and ``--set`` overrides.

    ``--set`` keys without a known section first are taken inside ``scope`` (the protocol's
    stage), so ``--set max_frames=6`` means ``eval_label_propagation.max_frames=6``.
    """
    from app.registry import stage_registry
    from correlearn.config import deep_merge
    from correlearn.pipeline import Pipeline

    ws = activate()
    check_server(ws.tracking_uri)
    registry = stage_registry()
    path = Path(config).resolve() if config else Path.cwd() / "--set"
    raw = deep_merge(load_yaml(path), sections) if config else dict(sections)
    known = set(registry) | {"datasets", "flow"}
    scoped = [s if s.split(".", 1)[0] in known or not scope else f"{scope}.{s}" for s in sets]
    return Pipeline(path, registry, ws, scoped, raw=apply_overrides(raw, scoped))


def _track(pipe) -> None:
    """Record stage runs in MLflow from now on (after a bad file could still be refused)."""
    from correlearn.tracking import Tracker

    pipe.tracker = Tracker(pipe.ws)


def import_into_store(pipe, path: Path, args: argparse.Namespace, force: bool = False):
    """Run ``import_checkpoint`` on ``path``; a bad file fails before any artifact or run exists."""
    from correlearn.checkpoints import import_file

    over = {"path": str(path.resolve()), "format": args.format, "branch": args.branch}
    over["backbone"] = args.backbone
    cfg = pipe.section(IMPORT_STAGE, overrides=over)
    key, _ = pipe.key_of(IMPORT_STAGE, cfg, {})
    if force or not pipe.store.exists(IMPORT_STAGE, key):
        import_file(path, args.format, args.branch, args.backbone)
    _track(pipe)
    return pipe.run_stage(IMPORT_STAGE, overrides=over, force=force)


def _print_import(res) -> dict[str, Any]:
    rep = json.loads((Path(res.ref.path) / "import.json").read_text())
    how = "detected" if rep["detected"] else "as given"
    branch = f", branch {rep['branch']}" if rep["branch"] else ""
    print(
        f"format: {rep['format']} ({how}{branch}); backbone: {rep['backbone']} {rep['backbone_kwargs'] or ''}"
    )
    print(
        f"loaded: {rep['loaded']}/{rep['total']} backbone keys from {rep['source']}; missing: none"
    )
    print(f"unexpected: {', '.join(rep['unexpected'][:5]) or 'none'}")
    if rep["ignored"]:
        print(
            f"ignored (not the backbone): {rep['ignored']} keys, e.g. {', '.join(rep['ignored_first'][:3])}"
        )
    for note in rep["notes"]:
        print(f"note: {note}")
    return rep


def _import(args: argparse.Namespace) -> int:
    pipe = _pipeline(args.config, {}, [], None)
    res = import_into_store(pipe, Path(args.file), args, force=args.force)
    rep = _print_import(res)
    print(f"checkpoint: {res.ref.stage}/{res.ref.key} -> {res.ref.path}")
    if args.json:
        keep = ("format", "detected", "backbone", "branch")
        print(
            json.dumps(
                {**res.ref.to_dict(), "cache_hit": res.cache_hit, **{k: rep[k] for k in keep}}
            )
        )
    return 0


def _export(args: argparse.Namespace) -> int:
    import torch

    from correlearn.checkpoints import CheckpointError, export_state, write_checkpoint_file
    from correlearn.inputs import find_checkpoint
    from correlearn.models.io import BACKBONE_FILE

    ref = find_checkpoint(ArtifactStore(activate().artifacts), args.key, f"export {args.key}")
    try:
        state = torch.load(Path(ref.path) / BACKBONE_FILE, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises several types for one bad file
        raise CheckpointError(f"{Path(ref.path) / BACKBONE_FILE}: cannot load ({exc})") from None
    obj = export_state(state, args.format)
    out = Path(args.out or f"{ref.key}-{args.format}.pth")
    write_checkpoint_file(obj, out, args.overwrite)
    print(f"wrote {out} ({args.format} layout of {ref.stage}/{ref.key}, {len(state)} tensors)")
    if args.json:
        print(
            json.dumps(
                {
                    "key": ref.key,
                    "stage": ref.stage,
                    "format": args.format,
                    "path": str(out.resolve()),
                }
            )
        )
    return 0


def _checkpoint(pipe, args: argparse.Namespace):
    from correlearn.checkpoints import CheckpointError
    from correlearn.inputs import find_checkpoint

    path = Path(args.checkpoint)
    if path.is_dir():
        raise CheckpointError(f"{path}: is a folder; pass a checkpoint file or an artifact key")
    if path.is_file():
        res = import_into_store(pipe, path, args)
        _print_import(res)
        return res
    if path.suffix in (".pt", ".pth", ".bin", ".ckpt") or "/" in args.checkpoint:
        raise CheckpointError(f"{path}: no such file")
    from correlearn.records import StageRun

    return StageRun.of(find_checkpoint(pipe.store, args.checkpoint))


def _tracking_checkpoint(pipe, args: argparse.Namespace, ckpt):
    """The checkpoint ``eval_tracking`` takes: ``ckpt`` itself, or its trained SiamFC head."""
    if pipe.section("eval_tracking").head == "none":
        return ckpt
    if not args.head_root and ckpt.ref.stage != HEAD_STAGE:
        heads = pipe.raw.get(HEAD_STAGE) or {}
        if heads.get("dataset", "got10k") not in (pipe.raw.get("datasets") or {}):
            raise ConfigError(
                "eval tracking: the SiamFC protocol trains a head first; pass --head-root DIR "
                "(a GOT-10k-layout folder) or --set head=none (plain cross-correlation)"
            )
    return pipe.run_stage(HEAD_STAGE, inputs={"checkpoint": ckpt}, force=args.force)


def run_protocol(args: argparse.Namespace):
    """Run ``args.protocol``'s stage on ``args.checkpoint`` (a file is imported first), tracked.

    Returns:
        The pipeline, the checkpoint's run and the evaluation's run.
    """
    stage, layout = PROTOCOLS[args.protocol]
    root = Path(args.root).expanduser().resolve()
    if not root.is_dir():
        raise ConfigError(f"--root {args.root}: no such folder")
    section: dict[str, Any] = {"dataset": "eval"}
    if args.protocol in PRESET_PROTOCOLS and args.preset:
        section["preset"] = args.preset
    sections: dict[str, Any] = {
        "datasets": {"eval": {"root": str(root), "layout": args.layout or layout}},
        stage: section,
    }
    if args.protocol == "tracking" and args.head_root:
        head_root = Path(args.head_root).expanduser().resolve()
        if not head_root.is_dir():
            raise ConfigError(f"--head-root {args.head_root}: no such folder")
        sections["datasets"]["head_train"] = {"root": str(head_root), "layout": "got10k"}
        sections[HEAD_STAGE] = {"dataset": "head_train"}
    pipe = _pipeline(args.config, sections, args.set or [], stage)
    ckpt = _checkpoint(pipe, args)
    _track(pipe)
    if args.protocol == "tracking":
        ckpt = _tracking_checkpoint(pipe, args, ckpt)
    return pipe, ckpt, pipe.run_stage(stage, inputs={"checkpoint": ckpt}, force=args.force)


def _eval(args: argparse.Namespace) -> int:
    _, ckpt, res = run_protocol(args)
    metrics = res.metrics()
    root = Path(args.root).expanduser().resolve()
    print(f"\n{args.protocol} on {root} ({ckpt.ref.stage}/{ckpt.ref.key}):\n")
    print("\n".join(metrics_lines(metrics)))
    print(f"\nartifact: {res.ref.path}{'  (cache hit)' if res.cache_hit else ''}")
    if args.json:
        flat = {k: v for k, v in metrics.items() if isinstance(v, int | float)}
        out = {**res.ref.to_dict(), "cache_hit": res.cache_hit, "protocol": args.protocol}
        print(json.dumps({**out, "checkpoint": ckpt.ref.to_dict(), "metrics": flat}))
    return 0


def _guarded(fn):
    """Checkpoint and backbone errors as the CLI's one ``error:`` line and exit code 2."""

    def run(args: argparse.Namespace) -> int:
        from correlearn.checkpoints import CheckpointError
        from correlearn.models.io import BackboneLoadError

        try:
            return fn(args)
        except (CheckpointError, BackboneLoadError) as exc:
            print(f"error: {exc}", file=__import__("sys").stderr)
            return 2

    return run


def _import_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--format",
        default="auto",
        choices=["auto", *FORMAT_NAMES],
        help="file layout; auto detects and says which",
    )
    p.add_argument(
        "--branch", help="sub-network: online|target (openselfsup, cim), teacher|student (dino)"
    )
    p.add_argument(
        "--backbone", help="registry name to load into (default: inferred from the weights)"
    )
    p.add_argument("--config", help="a pipeline config to take other sections from")


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register ``import``, ``export`` and ``eval`` on the top-level parser's subcommands."""
    im = sub.add_parser("import", help="bring a checkpoint file into the store (content-addressed)")
    im.add_argument("file")
    _import_options(im)
    im.add_argument("--force", action="store_true", help="re-import even if cached")
    im.add_argument("--json", action="store_true", help="end with one JSON line")
    im.set_defaults(fn=_guarded(_import))

    ex = sub.add_parser("export", help="write a checkpoint artifact in a reference code's format")
    ex.add_argument("key", help="a checkpoint artifact key or a unique prefix")
    ex.add_argument("--format", required=True, choices=list(FORMAT_NAMES))
    ex.add_argument("--out", help="output file (default: <key>-<format>.pth)")
    ex.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    ex.add_argument("--json", action="store_true")
    ex.set_defaults(fn=_guarded(_export))

    ev = sub.add_parser("eval", help="evaluate a checkpoint file or artifact with a protocol")
    ev.add_argument("protocol", choices=list(PROTOCOLS))
    ev.add_argument(
        "--checkpoint", required=True, help="a checkpoint file or artifact key (prefix)"
    )
    ev.add_argument("--root", required=True, help="the dataset folder, in the protocol's layout")
    ev.add_argument(
        "--layout",
        help="dataset layout (default: davis, class_folders, jhmdb, vip, voc07, otb per protocol)",
    )
    ev.add_argument(
        "--preset", choices=PRESETS, help="label-propagation preset (davis, pose, parts)"
    )
    _import_options(ev)
    add_run_options(ev)
    ev.set_defaults(fn=_guarded(_eval))


def add_run_options(p: argparse.ArgumentParser) -> None:
    """Options of every protocol run (``eval``, ``reproduce``): head data, overrides, output."""
    p.add_argument(
        "--head-root",
        help="tracking: GOT-10k-layout set the SiamFC head is trained on (train_siamfc_head)",
    )
    p.add_argument(
        "--set", action="append", metavar="KEY=VALUE", help="override (the protocol's section)"
    )
    p.add_argument("--force", action="store_true", help="recompute the evaluation")
    p.add_argument("--json", action="store_true", help="end with one JSON line")
