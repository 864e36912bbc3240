"""Training stages follow ``pretrain_<method>``; a renamed stage's first name still works and its
artifacts stay cache hits."""

import hashlib
from pathlib import Path

import pytest

from correlearn.artifacts import canonical_json
from correlearn.config import ConfigError, key_material
from correlearn.pipeline import Pipeline
from correlearn.pretrain import METHODS
from correlearn.pretrain.stage import pretrain_stage
from correlearn.stage_names import RENAMED, current_name
from correlearn.workspace import get_workspace
from stages import STAGES
from tests.train.test_stage_run import TOY

# The toy method trained by a stage under BYOL's current name: what a cache hit depends on is
# the name, not the method.
REG = {"pretrain_byol": pretrain_stage(TOY, name="pretrain_byol")}
STEPS = "{train: {epochs: 1, steps_per_epoch: 2}}"


def _pipe(root: Path, yaml_text: str) -> Pipeline:
    ws = get_workspace(root / "home")
    ws.artifacts.mkdir(parents=True, exist_ok=True)
    cfg = root / "p.yaml"
    cfg.write_text(yaml_text)
    return Pipeline(cfg, REG, ws)


def test_every_training_stage_is_pretrain_method_and_renamed_ones_are_registered():
    assert {s for s in STAGES if s.startswith("pretrain_")} == {f"pretrain_{m}" for m in METHODS}
    assert set(RENAMED.values()) <= set(STAGES) and not set(RENAMED) & set(STAGES)


def test_an_artifact_made_under_the_first_name_is_a_cache_hit_under_the_current_one(tmp_path):
    pipe = _pipe(tmp_path, f"pretrain_image: {STEPS}\n")
    old = pipe.run_stage("pretrain_image")
    assert not old.cache_hit and old.stage == "pretrain_byol"
    # Stored under the first name, keyed as before the rename: the payload names pretrain_image.
    assert Path(old.path).parent.name == "pretrain_image"
    material = key_material(pipe.section("pretrain_byol"))
    payload = {"stage": "pretrain_image", "version": TOY.version, "config": material, "inputs": {}}
    assert old.key == hashlib.sha256(canonical_json(payload).encode()).hexdigest()[:16]
    new = _pipe(tmp_path, f"pretrain_byol: {STEPS}\n").run_stage("pretrain_byol")
    assert new.cache_hit and (new.key, new.path) == (old.key, old.path)


def test_a_config_naming_one_stage_twice_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="'pretrain_image' and 'pretrain_byol' configure one"):
        _pipe(tmp_path, f"pretrain_image: {STEPS}\npretrain_byol: {STEPS}\n")


def test_variant_sections_are_renamed_too():
    assert current_name("pretrain_object@vit") == "pretrain_orl@vit"
    assert current_name("pretrain_vfs") == "pretrain_vfs"


def test_set_overrides_under_the_first_name_reach_the_stage(tmp_path):
    ws = get_workspace(tmp_path / "home")
    cfg = tmp_path / "p.yaml"
    cfg.write_text(f"pretrain_byol: {STEPS}\n")
    pipe = Pipeline(cfg, REG, ws, ["pretrain_image.train.steps_per_epoch=3"])
    assert pipe.section("pretrain_byol").train.steps_per_epoch == 3


def test_the_command_line_finds_a_stage_by_its_first_name(tmp_path):
    """`correlearn stage run knn` resolves its inputs through Pipeline.spec."""
    cfg = tmp_path / "p.yaml"
    cfg.write_text("{}\n")
    pipe = Pipeline(cfg, STAGES, get_workspace(tmp_path / "home"))
    assert pipe.spec("knn") is STAGES["neighbours"]
    assert pipe.spec("pretrain_object") is STAGES["pretrain_orl"]
