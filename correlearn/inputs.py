"""Stage inputs named on the command line: ``--input NAME=KEY_OR_PREFIX``.

An input takes an artifact of its default producer's stage; an input called ``checkpoint`` takes
any checkpoint artifact (``backbone.pt`` + ``backbone.json``: a training stage, ``init_random``,
``import_checkpoint``), which is what lets every evaluation stage score any checkpoint.
"""

from __future__ import annotations

from pathlib import Path

from correlearn.artifacts import ArtifactError, ArtifactRef, ArtifactStore
from correlearn.config import ConfigError
from correlearn.models.io import BACKBONE_FILE, BACKBONE_JSON
from correlearn.records import StageRun
from correlearn.stage import StageSpec

CHECKPOINT_INPUT = "checkpoint"


def parse_inputs(texts: list[str] | None) -> dict[str, str]:
    """``["checkpoint=ab12", ...]`` -> ``{"checkpoint": "ab12"}``; a malformed or repeated one errs."""
    out: dict[str, str] = {}
    for text in texts or []:
        name, sep, key = text.partition("=")
        name, key = name.strip(), key.strip()
        if not sep or not name or not key:
            raise ConfigError(f"--input {text!r}: expected NAME=KEY_OR_PREFIX")
        if name in out:
            raise ConfigError(f"--input {name}: given twice")
        out[name] = key
    return out


def is_checkpoint(path: str | Path) -> bool:
    """Whether an artifact folder holds an exported backbone."""
    p = Path(path)
    return (p / BACKBONE_FILE).is_file() and (p / BACKBONE_JSON).is_file()


def find_checkpoint(store: ArtifactStore, key: str, what: str | None = None) -> ArtifactRef:
    """The checkpoint artifact with key (prefix) ``key``; any other artifact is an error.

    ``what`` starts the error message (default ``--checkpoint KEY``).
    """
    what = what or f"--checkpoint {key}"
    try:
        stage, full = store.find(key)
    except ArtifactError as exc:
        raise ArtifactError(f"{what}: {exc}") from None
    ref = store.ref(stage, full)
    if not is_checkpoint(ref.path):
        raise ArtifactError(
            f"{what}: {stage}/{full} is not a checkpoint (no {BACKBONE_FILE} + {BACKBONE_JSON})"
        )
    return ref


def resolve_inputs(
    store: ArtifactStore, spec: StageSpec, given: dict[str, str]
) -> dict[str, StageRun]:
    """Artifacts for the named inputs of ``spec``, checked against each input's kind.

    Raises:
        ConfigError: the stage has no input of that name.
        ArtifactError: no such key, an ambiguous prefix, or an artifact of another stage kind.
    """
    out = {}
    for name, key in given.items():
        if name not in spec.inputs:
            known = ", ".join(spec.inputs) or "none"
            raise ConfigError(
                f"--input {name}: stage {spec.name} has no such input (inputs: {known})"
            )
        what = f"--input {name}={key}"
        if name == CHECKPOINT_INPUT:
            ref = find_checkpoint(store, key, what)
        else:
            try:
                stage, full = store.find(key)
            except ArtifactError as exc:
                raise ArtifactError(f"{what}: {exc}") from None
            if stage != spec.inputs[name]:
                raise ArtifactError(
                    f"{what}: {stage}/{full} is a {stage} artifact; {name} takes {spec.inputs[name]}"
                )
            ref = store.ref(stage, full)
        out[name] = StageRun.of(ref)
    return out
