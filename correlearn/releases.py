"""Published releases: which file, how it is evaluated, and the numbers its authors report.

A release table (``data_specs/releases.yaml``) is a YAML mapping with one key, ``releases``: a
list of :class:`Release` entries. Each names a checkpoint file and its hash where the authors give
one, the import format and backbone, the evaluation protocol (and label-propagation preset) that
produced the published numbers, and those numbers with where they are printed. This module loads
and validates the table (:func:`load_releases`), checks a downloaded file against its entry
(:func:`check_file`) and lines our metrics up against the published ones (:func:`compare`); the
command that runs the evaluation is ``correlearn reproduce`` (``app/reproduce.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, field_validator, model_validator

from correlearn.checkpoints.files import file_sha256
from correlearn.checkpoints.formats import FORMATS
from correlearn.config import ConfigError, StrictModel, format_validation_error, load_yaml
from correlearn.eval.label_prop_config import PRESETS
from correlearn.models import BackboneName

# protocol -> metric of its ``metrics.json`` -> factor to the percent the papers print (DAVIS
# scores are fractions, every other protocol writes percent). The keys are the protocols of
# ``correlearn eval``; a published metric must be one of its protocol's.
PROTOCOL_METRICS: dict[str, dict[str, float]] = {
    "davis": dict.fromkeys(
        ("JF_mean", "J_mean", "F_mean", "J_recall", "F_recall", "J_decay", "F_decay"), 100.0
    ),
    "knn": dict.fromkeys(("top1", "top5"), 1.0),
    "linear": dict.fromkeys(("top1", "top5"), 1.0),
    "pose": dict.fromkeys(("PCK_0.1", "PCK_0.2"), 1.0),
    "parts": dict.fromkeys(("mIoU", "pixel_accuracy"), 1.0),
    "svm": {"mAP": 1.0},
    "tracking": dict.fromkeys(("precision", "success"), 1.0),
    "finetune": dict.fromkeys(("top1", "top5"), 1.0),
}
# Protocols that propagate labels with a preset; the preset changes the number, so it is required.
DENSE_PROTOCOLS = ("davis", "pose", "parts")
HEX = "^[0-9a-f]+$"


class ReleaseError(ConfigError):
    """A release table is invalid, a name is unknown, or a file is not the release it claims."""


class Release(StrictModel):
    """One published checkpoint evaluated with one protocol.

    Attributes:
        name: short id (``vfs_r18_k400``); ``list`` is taken by ``correlearn reproduce list``.
        file: the release's file name; None where the release names none (a shared-drive link).
        url: where the authors publish the file.
        sha256: the file's full SHA-256, only where the authors publish it.
        sha256_prefix: the leading hex digits of the SHA-256 the authors publish, e.g. the
            8 in an OpenMMLab file name (``...-db1a4c0d.pth``, ``tools/publish_model.py``).
        format: the import format (``correlearn import --help``).
        branch: the format's sub-network; None is the format's default.
        backbone: the registry name the weights load into.
        protocol: the ``correlearn eval`` protocol behind the published numbers.
        preset: the label-propagation preset (davis, pose and parts only, and required there).
        dataset: the evaluation set as the source names it (``DAVIS 2017``).
        split: the part of it the number is on (``val``).
        published: metric of the protocol's ``metrics.json`` -> value in percent.
        source: where the numbers are printed (paper table, repository README).
    """

    name: str = Field(pattern="^[a-z0-9][a-z0-9_]*$")
    file: str | None = None
    url: str | None = None
    sha256: str | None = Field(None, min_length=64, max_length=64, pattern=HEX)
    sha256_prefix: str | None = Field(None, min_length=6, max_length=63, pattern=HEX)
    format: str
    branch: str | None = None
    backbone: BackboneName
    protocol: str
    preset: str | None = None
    dataset: str
    split: str
    published: dict[str, float] = Field(min_length=1)
    source: str = Field(min_length=1)

    @field_validator("name")
    @classmethod
    def _not_a_command(cls, v: str) -> str:
        if v == "list":
            raise ValueError("'list' is the command that prints the table, not a release name")
        return v

    @field_validator("format")
    @classmethod
    def _known_format(cls, v: str) -> str:
        if v not in FORMATS:
            raise ValueError(f"unknown format {v!r}; known: {', '.join(FORMATS)}")
        return v

    @field_validator("protocol")
    @classmethod
    def _known_protocol(cls, v: str) -> str:
        if v not in PROTOCOL_METRICS:
            raise ValueError(f"unknown protocol {v!r}; known: {', '.join(PROTOCOL_METRICS)}")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> Release:
        if self.protocol in DENSE_PROTOCOLS and self.preset not in PRESETS:
            raise ValueError(
                f"preset: {self.preset!r} is not a preset of protocol {self.protocol} "
                f"(one of {', '.join(PRESETS)})"
            )
        if self.protocol not in DENSE_PROTOCOLS and self.preset is not None:
            raise ValueError(f"preset: protocol {self.protocol} takes no preset")
        known = PROTOCOL_METRICS[self.protocol]
        if unknown := sorted(set(self.published) - set(known)):
            raise ValueError(
                f"published: {', '.join(unknown)} not a metric of {self.protocol} "
                f"(one of {', '.join(known)})"
            )
        if self.sha256 and self.sha256_prefix and not self.sha256.startswith(self.sha256_prefix):
            raise ValueError("sha256_prefix: does not start sha256")
        return self


def load_releases(path: str | Path) -> dict[str, Release]:
    """Read and validate a release table.

    Args:
        path: a YAML file ``{releases: [entry, ...]}``.

    Returns:
        Name -> release, in the file's order.

    Raises:
        ReleaseError: a missing or malformed file, an unknown key, a bad value or a repeated
            name; the message is ``<file>: <entry name>.<key>: <problem>``.
    """
    raw = _read(path)
    out: dict[str, Release] = {}
    for i, entry in enumerate(raw["releases"]):
        where = entry.get("name") if isinstance(entry, dict) else None
        where = where if isinstance(where, str) else f"releases.{i}"
        if not isinstance(entry, dict):
            raise ReleaseError(f"{path}: {where}: an entry must be a mapping")
        try:
            release = Release.model_validate(entry)
        except ValidationError as exc:
            raise ReleaseError(format_validation_error(exc, str(path), where)) from None
        if release.name in out:
            raise ReleaseError(f"{path}: {where}: name given twice")
        out[release.name] = release
    return out


def _read(path: str | Path) -> dict[str, Any]:
    try:
        raw = load_yaml(path)
    except ConfigError as exc:
        raise ReleaseError(str(exc)) from None
    if unknown := sorted(set(raw) - {"releases"}):
        raise ReleaseError(f"{path}: {unknown[0]}: unknown key (the table is `releases:`)")
    if not isinstance(raw.get("releases"), list) or not raw["releases"]:
        raise ReleaseError(f"{path}: releases: must be a non-empty list of entries")
    return raw


def find_release(table: dict[str, Release], name: str, source: str | Path) -> Release:
    """The release called ``name``; an unknown name is an error listing the known ones."""
    if name not in table:
        raise ReleaseError(f"{source}: no release {name!r}; known: {', '.join(table)}")
    return table[name]


def check_file(release: Release, path: str | Path) -> str | None:
    """Check ``path`` against the release's SHA-256 (or its published prefix).

    Args:
        release: the table entry.
        path: the downloaded checkpoint file.

    Returns:
        The file's SHA-256, or None when the release publishes no hash (nothing to check).

    Raises:
        ReleaseError: the file is missing, or its hash is not the release's.
    """
    path = Path(path)
    if not path.is_file():
        raise ReleaseError(f"{path}: no such file")
    expected = release.sha256 or release.sha256_prefix
    if expected is None:
        return None
    digest = file_sha256(path)
    if not digest.startswith(expected):
        shown = expected if release.sha256 else f"{expected}..."
        raise ReleaseError(
            f"{path}: sha256 {digest} does not match release {release.name} (expected {shown})"
        )
    return digest


@dataclass(frozen=True)
class MetricComparison:
    """One published metric beside ours, both in percent.

    Attributes:
        metric: the ``metrics.json`` name (``JF_mean``).
        ours: our value, None when the evaluation wrote none.
        published: the authors' value.
    """

    metric: str
    ours: float | None
    published: float

    @property
    def difference(self) -> float | None:
        """Ours minus published (None without ours)."""
        return None if self.ours is None else self.ours - self.published


def compare(release: Release, metrics: dict[str, Any]) -> list[MetricComparison]:
    """Our evaluation's ``metrics.json`` against the release's published numbers.

    Args:
        release: the table entry.
        metrics: the evaluation artifact's ``metrics.json``.

    Returns:
        One comparison per published metric, in the table's order, ours scaled to percent.
    """
    scale = PROTOCOL_METRICS[release.protocol]
    out = []
    for name, value in release.published.items():
        ours = metrics.get(name)
        ours = float(ours) * scale[name] if isinstance(ours, int | float) else None
        out.append(MetricComparison(name, ours, value))
    return out
