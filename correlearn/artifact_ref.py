"""A reference to a finished artifact, and the typed reads a stage may make of a declared input."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel

MANIFEST = "manifest.json"
M = TypeVar("M", bound=BaseModel)


class ArtifactError(RuntimeError):
    """An artifact is missing, ambiguous or unreadable."""


@dataclass(frozen=True)
class ArtifactRef:
    """What Prefect tasks pass around: a small, JSON-friendly reference to a finished artifact."""

    stage: str
    key: str
    path: str

    def to_dict(self) -> dict[str, str]:
        """The reference as a plain dict (Prefect task results, ``--json`` output)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ArtifactRef:
        """Inverse of :meth:`to_dict` (extra keys such as ``cache_hit`` are ignored)."""
        return cls(stage=d["stage"], key=d["key"], path=d["path"])

    def manifest(self) -> dict[str, Any]:
        """The artifact's ``manifest.json`` (config, inputs, counts, metrics, metadata)."""
        return json.loads((Path(self.path) / MANIFEST).read_text())

    def config_as(self, model: type[M], field: str | None = None) -> M:
        """The producing stage's resolved config, validated as ``model`` (or one field of it).

        A stage reads what another stage was configured with through this typed accessor of a
        declared input, never by opening the other artifact's files itself.

        Args:
            model: the pydantic model to validate with (the producer's config model, or the
                model of one of its fields).
            field: a top-level field of the producer's config to validate instead of the whole.
        """
        raw = self.manifest()["config"]
        raw = raw[field] if field else raw
        # The resolved config also holds the stage's extra key material (a dataset spec, say).
        return model.model_validate({k: v for k, v in raw.items() if k in model.model_fields})
