"""Stage names and their rules; a renamed stage keeps its cache.

A training stage is ``pretrain_<method>``, an evaluation ``eval_<protocol>``. Stages renamed to
follow them (BYOL's ``pretrain_image`` and ORL stage 3's ``pretrain_object``, named by their data;
ORL's ``knn``, apart from the k-NN probe ``eval_knn``) keep their first names as aliases
everywhere a user writes a stage name (a YAML section, ``--set``, ``correlearn stage``):
:func:`current_name` resolves them. Their artifacts keep the first name as key material and store
folder (:func:`stored_name`), so every artifact computed under the first name is still a cache
hit under the new one.
"""

from __future__ import annotations

from typing import Any

from correlearn.config import ConfigError

# First name -> current name of each renamed stage.
RENAMED: dict[str, str] = {
    "pretrain_image": "pretrain_byol",
    "pretrain_object": "pretrain_orl",
    "knn": "neighbours",  # ORL's image-neighbour stage, apart from the k-NN probe eval_knn
}
_STORED = {new: old for old, new in RENAMED.items()}


def stored_name(stage: str) -> str:
    """The name a stage's artifacts are keyed and stored under: its first name."""
    return _STORED.get(stage, stage)


def current_name(name: str) -> str:
    """A stage name, or a ``stage@variant`` section, with a first name replaced by the current one."""
    stage, at, variant = name.partition("@")
    return RENAMED.get(stage, stage) + at + variant


def rename_sections(raw: dict[str, Any], where: str) -> dict[str, Any]:
    """The config mapping with sections under a stage's first name moved to its current name.

    Raises:
        ConfigError: ``where: sections 'pretrain_image' and 'pretrain_byol' configure one stage``.
    """
    out: dict[str, Any] = {}
    for name, value in raw.items():
        new = current_name(name)
        if new in out:
            other = next(n for n in raw if n != name and current_name(n) == new)
            raise ConfigError(
                f"{where}: sections {other!r} and {name!r} configure one stage; keep one"
            )
        out[new] = value
    return out


def current_override(text: str) -> str:
    """A ``section.key=value`` override with its section under the stage's current name."""
    section, dot, rest = text.partition(".")
    return current_name(section) + dot + rest
