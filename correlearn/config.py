"""Typed configuration: pydantic models with the papers' defaults; YAML files only override.

Every config model derives from :class:`StrictModel`, so an unknown key or a value of the wrong type is
an error that names the key. A pipeline config file is a YAML mapping whose top-level sections are the
stage sections of the stage registry (``stages.STAGES``, see :class:`correlearn.pipeline.Pipeline`); ``--set a.b=value`` overrides are
applied to the raw mapping before validation.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError


class ConfigError(ValueError):
    """A configuration file or override is invalid; the message names the file and key."""


# Field metadata for settings that cannot change a stage's output (worker counts, logging cadence):
# ``Field(..., json_schema_extra=NOT_IN_KEY)``. They are logged but left out of artifact keys.
NOT_IN_KEY = {"in_key": False}
# Budgets (a training run stopped early on its full schedule): left out of the key too; the
# pipeline stores a budget-stopped result under its own key (see correlearn.budgets).
BUDGET_STEPS = {"in_key": False, "budget": "steps"}
BUDGET_TIME = {"in_key": False, "budget": "time"}
# A switch added after artifacts existed, whose default reproduces them: in the key only when set
# to something else, so adding it does not change any existing key.
IN_KEY_UNLESS_DEFAULT = {"in_key": "unless_default"}


def budget_fields(model: BaseModel, prefix: str = "") -> dict[str, tuple[str, Any]]:
    """Dotted name -> (``"steps"`` or ``"time"``, value) of every budget field (recursive)."""
    out: dict[str, tuple[str, Any]] = {}
    for name, value in model:
        extra = type(model).model_fields[name].json_schema_extra or {}
        where = f"{prefix}{name}"
        if isinstance(value, BaseModel):
            out.update(budget_fields(value, where + "."))
        elif isinstance(extra, dict) and "budget" in extra:
            out[where] = (extra["budget"], value)
    return out


def key_material(model: BaseModel) -> dict[str, Any]:
    """``model.model_dump(mode="json")`` without the fields marked :data:`NOT_IN_KEY` (recursive).

    Fields marked :data:`IN_KEY_UNLESS_DEFAULT` are left out while they hold their default.
    """
    out = {}
    for name, value in model:
        info = type(model).model_fields[name]
        in_key = (info.json_schema_extra or {}).get("in_key", True)
        if in_key is False or (in_key == "unless_default" and value == info.get_default()):
            continue
        if isinstance(value, BaseModel):
            out[name] = key_material(value)
        else:
            out[name] = type(model).__pydantic_serializer__.to_python(
                model, mode="json", include={name}
            )[name]
    return out


DEVICE_PATTERN = r"^(auto|cpu|mps|cuda(:\d+)?)$"
SEED_MAX = 2**32 - 1  # numpy's legacy seeding (np.random.seed) takes [0, 2**32)


def check_device(spec: str) -> str | None:
    """Why ``spec`` cannot be used as a torch device here, or None when it can.

    Args:
        spec: ``auto``, ``cpu``, ``mps``, ``cuda`` or ``cuda:N``.
    """
    if not re.match(DEVICE_PATTERN, spec):
        return f"{spec!r} is not a device (auto, cpu, cuda, cuda:N, mps)"
    if spec.startswith("cuda"):
        import torch  # only for a config that names CUDA

        if not torch.cuda.is_available():
            return f"{spec!r} requested but CUDA is not available on this machine"
        index = int(spec.split(":")[1]) if ":" in spec else 0
        if index >= torch.cuda.device_count():
            return f"{spec!r} requested but only {torch.cuda.device_count()} CUDA device(s) exist"
    return None


def preflight(model: BaseModel, source: str = "config", prefix: str = "") -> None:
    """Check values that would otherwise fail only after a stage started (partial folder, run).

    Every field named ``device`` (a string) must name an available device and every ``seed``
    (an int) must be in ``[0, 2**32)``, in any stage's config, nested models included.

    Raises:
        ConfigError: ``source: prefix.field: problem``.
    """
    for name, value in model:
        where = f"{prefix}.{name}" if prefix else name
        if isinstance(value, BaseModel):
            preflight(value, source, where)
        elif name == "device" and isinstance(value, str) and (why := check_device(value)):
            raise ConfigError(f"{source}: {where}: {why}")
        elif name == "seed" and isinstance(value, int) and not 0 <= value <= SEED_MAX:
            raise ConfigError(f"{source}: {where}: {value} is not a seed in [0, 2**32)")


class StrictModel(BaseModel):
    """Base of every config model: unknown keys are errors, values are validated on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)


def parse_override(text: str) -> tuple[list[str], Any]:
    """Parse one ``a.b.c=value`` override; the value is read as YAML (``1e-3``, ``[1, 2]``, ``true``).

    Args:
        text: the override as typed on the command line.

    Returns:
        The dotted key split into parts, and the parsed value.
    """
    if "=" not in text:
        raise ConfigError(f"override {text!r} is not of the form key.path=value")
    key, raw = text.split("=", 1)
    parts = [p for p in key.strip().split(".") if p]
    if not parts:
        raise ConfigError(f"override {text!r} has an empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"override {text!r}: value is not valid YAML ({exc})") from exc
    return parts, value


def apply_overrides(raw: dict[str, Any], overrides: list[str] | None) -> dict[str, Any]:
    """Return a copy of ``raw`` with each ``a.b=value`` override applied (nested dicts are created)."""
    out = copy.deepcopy(raw)
    for text in overrides or []:
        parts, value = parse_override(text)
        node = out
        for p in parts[:-1]:
            child = node.get(p)
            if child is None:
                child = node[p] = {}
            elif not isinstance(child, dict):
                raise ConfigError(f"override {text!r}: {p!r} is not a section")
            node = child
        node[parts[-1]] = value
    return out


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``base`` updated by ``over``, recursing into mappings present in both (lists are replaced)."""
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def with_defaults(model: type[BaseModel], raw: dict[str, Any]) -> dict[str, Any]:
    """Merge ``raw`` over the model's defaults, so a YAML section overrides field by field.

    Without this, ``optim: {base_lr: 0.1}`` would rebuild the nested optimiser config from its
    class defaults and silently drop the stage's paper defaults (SGD for VFS, say).
    """
    return deep_merge(model().model_dump(mode="python"), raw)


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping, with an error naming the file when it is missing or malformed."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping, got {type(data).__name__}")
    return data


def format_validation_error(exc: ValidationError, source: str, prefix: str = "") -> str:
    """Turn a pydantic error into one line per bad key: ``source: prefix.a.b: message``."""
    lines = []
    for err in exc.errors():
        parts = [prefix] * bool(prefix) + [str(p) for p in err["loc"]]
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        msg = msg.removeprefix("Value error, ")
        nested = (err.get("ctx") or {}).get("error")
        if isinstance(nested, NestedValueError):
            parts, msg = parts + nested.loc, nested.msg
        lines.append(f"{source}: {'.'.join(parts) or '<root>'}: {msg}")
    return "\n".join(lines)


class NestedValueError(ValueError):
    """A bad value inside a dict-valued setting; ``loc`` continues the setting's dotted path."""

    def __init__(self, loc: list[str], msg: str) -> None:
        super().__init__(f"{'.'.join(loc)}: {msg}")
        self.loc, self.msg = loc, msg


def overrides_of(model: type[BaseModel]):
    """A pydantic ``AfterValidator`` for a dict of overrides of ``model``'s fields.

    Settings whose defaults come from a preset chosen at run time (label propagation ``params``,
    fine-tuning ``hparams``) stay plain dicts, so their artifact keys hold only what the user set;
    this checks each key and value against ``model`` (over its defaults) when the config is read,
    so a typo or a bad value is an error before a stage starts.
    """

    def check(value: dict[str, Any]) -> dict[str, Any]:
        try:
            model.model_validate({**model().model_dump(), **value})
        except ValidationError as exc:
            err = exc.errors()[0]
            msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
            raise NestedValueError([str(p) for p in err["loc"]], msg) from None
        return value

    return check


def blame_overrides(message: str, source: str, overrides: list[str]) -> str:
    """Name ``--set`` instead of the file in each error line about a key an override set.

    Args:
        message: lines ``source: a.b.c: problem`` (:func:`format_validation_error`).
        source: the file name the lines start with.
        overrides: the ``a.b=value`` overrides applied over the file.
    """
    keys = [o.split("=", 1)[0].strip() for o in overrides]
    lines = []
    for line in message.splitlines():
        where = line.removeprefix(f"{source}: ").split(": ", 1)[0]
        hit = any(
            where == k or where.startswith(k + ".") or k.startswith(where + ".") for k in keys
        )
        lines.append(f"--set: {line.removeprefix(f'{source}: ')}" if hit else line)
    return "\n".join(lines)


def validate(
    model: type[BaseModel], raw: dict[str, Any], source: str = "config", prefix: str = ""
) -> Any:
    """Validate ``raw`` against ``model``; raise :class:`ConfigError` naming every bad key.

    Args:
        model: the pydantic model.
        raw: the mapping to validate.
        source: where it came from (a file name), first in each error line.
        prefix: dotted path of ``raw`` inside the file (a section name), prepended to keys.
    """
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, source, prefix)) from None
