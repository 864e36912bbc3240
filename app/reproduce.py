"""``correlearn reproduce``: evaluate a published release exactly as its table entry says.

``reproduce list`` prints the release table (``data_specs/releases.yaml``, or ``--table FILE``);
``reproduce NAME --file FILE --root DATA`` checks the file's hash against the entry before any
work, imports it with the entry's format and backbone, runs the entry's protocol and preset through
the same stages as ``correlearn eval``, and prints ours beside the published numbers.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from correlearn.config import ConfigError

if TYPE_CHECKING:
    from correlearn.releases import MetricComparison, Release

TABLE = Path(__file__).resolve().parents[1] / "data_specs" / "releases.yaml"


def _table(args: argparse.Namespace) -> dict[str, Release]:
    from correlearn.releases import load_releases

    return load_releases(args.table)


def _published(release: Release) -> str:
    return ", ".join(f"{k} {v:.1f}" for k, v in release.published.items())


def _list(args: argparse.Namespace) -> int:
    table = _table(args)
    for r in table.values():
        preset = f" --preset {r.preset}" if r.preset else ""
        print(f"{r.name}  {r.backbone}  {r.protocol}{preset}  {r.dataset} {r.split}")
        print(f"    published: {_published(r)}")
        print(f"    file: {r.file or '(not named by the release)'}  format: {r.format}")
        print(f"    source: {r.source}")
    print(f"{len(table)} release(s) in {args.table}")
    return 0


def comparison_lines(rows: list[MetricComparison]) -> list[str]:
    """A markdown table: metric, ours, published, ours minus published (percent)."""
    lines = ["| metric | ours | published | difference |", "|---|---|---|---|"]
    for c in rows:
        ours = "-" if c.ours is None else f"{c.ours:.1f}"
        diff = "-" if c.difference is None else f"{c.difference:+.1f}"
        lines.append(f"| {c.metric} | {ours} | {c.published:.1f} | {diff} |")
    return lines


def _eval_args(args: argparse.Namespace, release: Release) -> argparse.Namespace:
    """The ``correlearn eval`` arguments that evaluate ``args.file`` as the release says."""
    return argparse.Namespace(
        protocol=release.protocol,
        checkpoint=args.file,
        root=args.root,
        layout=None,
        preset=release.preset,
        head_root=args.head_root,
        format=release.format,
        branch=release.branch,
        backbone=release.backbone,
        config=args.config,
        set=args.set,
        force=args.force,
    )


def _mlflow_line(pipe, run_id: str | None) -> str:
    if not run_id or pipe.tracker is None:
        return "mlflow run: none (tracking off)"
    from correlearn.tracking import run_url

    return f"mlflow run: {run_id}  {run_url(pipe.tracker, run_id)}"


def _reproduce(args: argparse.Namespace) -> int:
    from app.cli_checkpoints import run_protocol
    from correlearn.releases import check_file, compare, find_release

    release = find_release(_table(args), args.name, args.table)
    if not args.file or not args.root:
        raise ConfigError(f"--file, --root: both required to reproduce {args.name}")
    digest = check_file(release, args.file)  # before the workspace, the store or MLflow
    if digest is None:
        print(f"note: release {release.name} publishes no hash; {args.file} is not checked")
    else:
        what = "sha256" if release.sha256 else f"published sha256 prefix {release.sha256_prefix}"
        print(f"{args.file}: matches release {release.name} ({what})")
    pipe, ckpt, res = run_protocol(_eval_args(args, release))
    rows = compare(release, res.metrics())
    preset = f", preset {release.preset}" if release.preset else ""
    print(f"\n{release.name}: {release.protocol}{preset} on {release.dataset} {release.split}")
    print(f"checkpoint {ckpt.ref.stage}/{ckpt.ref.key}, data {Path(args.root).resolve()}\n")
    print("\n".join(comparison_lines(rows)))
    print(f"\npublished: {release.source}")
    print(f"artifact: {res.ref.path}{'  (cache hit)' if res.cache_hit else ''}")
    print(_mlflow_line(pipe, res.mlflow_run_id))
    if args.json:
        metrics = {
            c.metric: {"ours": c.ours, "published": c.published, "difference": c.difference}
            for c in rows
        }
        out = {**res.ref.to_dict(), "cache_hit": res.cache_hit, "release": release.name}
        out |= {"checkpoint": ckpt.ref.to_dict(), "mlflow_run_id": res.mlflow_run_id}
        print(json.dumps({**out, "sha256": digest, "metrics": metrics}))
    return 0


def _run(args: argparse.Namespace) -> int:
    return _list(args) if args.name == "list" else _reproduce(args)


def add_command(sub: argparse._SubParsersAction) -> None:
    """Register ``reproduce`` on the top-level parser's subcommands."""
    from app.cli_checkpoints import add_run_options

    rp = sub.add_parser(
        "reproduce",
        help="evaluate a published checkpoint as its authors did; ours vs their numbers",
        description="`reproduce list` prints the release table; `reproduce NAME --file FILE "
        "--root DATA` checks the file's hash, imports it and runs the release's protocol.",
    )
    rp.add_argument("name", help="a release name, or `list`")
    rp.add_argument("--file", help="the downloaded checkpoint file")
    rp.add_argument("--root", help="the dataset folder, in the protocol's layout")
    rp.add_argument(
        "--table", type=Path, default=TABLE, help="a release table (default: %(default)s)"
    )
    rp.add_argument("--config", help="a pipeline config to take other sections from")
    add_run_options(rp)
    rp.set_defaults(fn=_run)
