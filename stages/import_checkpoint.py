"""Stage ``import_checkpoint``: a checkpoint file in a known format -> a checkpoint artifact.

Content-addressed by the file's SHA-256 (its path is not part of the key), so the same file under
another name is a cache hit and an edited file is a new artifact. Writes ``backbone.pt``
(torchvision/timm names), ``backbone.json`` and ``import.json`` (the format, where the backbone
was, ignored and unexpected keys).
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import Field

from correlearn.checkpoints import CheckpointError, file_sha256, import_file
from correlearn.config import NOT_IN_KEY, StrictModel
from correlearn.models import BackboneName
from correlearn.models.io import BACKBONE_FILE, write_backbone_json
from correlearn.stage import StageContext, StageSpec
from correlearn.train.checkpoint import atomic_torch_save


class ImportCheckpointConfig(StrictModel):
    """Config of ``import_checkpoint``.

    Attributes:
        path: the checkpoint file (relative paths from the config file's folder). Not in the key:
            the file's hash is.
        format: ``auto`` (detect and say which) or a format name (``correlearn import --help``).
        branch: the format's sub-network (``online``/``target``, ``teacher``/``student``); None
            is the format's default.
        backbone: registry name to load into; None infers it from the weights.
    """

    path: str = Field("", json_schema_extra=NOT_IN_KEY)
    format: str = "auto"
    branch: str | None = None
    backbone: BackboneName | None = None


def file_path(cfg: ImportCheckpointConfig, base: Path) -> Path:
    """The checkpoint file, resolved from ``base`` when relative."""
    if not cfg.path:
        raise CheckpointError("import_checkpoint.path: no checkpoint file given")
    p = Path(cfg.path).expanduser()
    return p if p.is_absolute() else (base / p).resolve()


def _resolve(cfg: ImportCheckpointConfig, pipe) -> dict:
    path = file_path(cfg, pipe.base_dir)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    return {"file": {"sha256": file_sha256(path), "bytes": path.stat().st_size}}


def run(ctx: StageContext) -> dict:
    """Import the file; a file that does not cover a whole backbone fails before writing."""
    cfg: ImportCheckpointConfig = ctx.config
    path = file_path(cfg, ctx.base_dir)
    imp = import_file(path, cfg.format, cfg.branch, cfg.backbone)
    rep = imp.report()
    atomic_torch_save(imp.backbone.export_state_dict(), ctx.out_dir / BACKBONE_FILE)
    write_backbone_json(ctx.out_dir, imp.name, imp.kwargs, f"import:{imp.format}")
    (ctx.out_dir / "import.json").write_text(
        json.dumps({**rep, "file": path.name, **ctx.resolved["file"]}, indent=2)
    )
    ctx.count("loaded_keys", imp.coverage.loaded)
    ctx.count("ignored_keys", len(imp.ignored))
    ctx.info(
        f"{path.name}: format {imp.format}{' (detected)' if imp.detected else ''}, "
        f"{imp.name}, {imp.coverage.loaded}/{imp.coverage.total} keys from {imp.source}"
    )
    return {"format": imp.format, "backbone": imp.name, "branch": imp.branch}


STAGE = StageSpec(
    name="import_checkpoint",
    version=1,
    config_model=ImportCheckpointConfig,
    run=run,
    resolve=_resolve,
    description="checkpoint file (torchvision, timm, authors' releases) -> checkpoint artifact",
)
