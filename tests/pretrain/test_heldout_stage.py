"""The held-out set as key material: its frames and its masks both enter the training stage's key."""

import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from correlearn.config import ConfigError
from correlearn.pretrain import METHODS
from correlearn.pretrain.heldout_stage import heldout_key

HELDOUT = Path(__file__).resolve().parents[2] / "data" / "davis-heldout"


def _pipe(tmp_path, layout="davis"):
    raw = {"datasets": {"held": {"root": str(tmp_path / "held"), "layout": layout}}}
    return SimpleNamespace(raw=raw, config_path=tmp_path / "p.yaml", base_dir=tmp_path)


def _copy_one_sequence(tmp_path, seq="soccerball"):
    for part in ("JPEGImages", "Annotations"):
        shutil.copytree(HELDOUT / part / "480p" / seq, tmp_path / "held" / part / "480p" / seq)
    return tmp_path / "held" / "Annotations" / "480p" / seq


def test_a_changed_mask_changes_the_key(tmp_path):
    masks = _copy_one_sequence(tmp_path)
    cfg = METHODS["orl"].config.model_validate({"val": {"dataset": "held"}})
    before = heldout_key(cfg, _pipe(tmp_path))
    first = sorted(masks.iterdir())[0]
    arr = np.asarray(Image.open(first)).copy()
    arr[:8, :8] = arr.max() or 1  # a few pixels relabelled
    Image.fromarray(arr).save(first)
    after = heldout_key(cfg, _pipe(tmp_path))
    assert before["heldout"]["fingerprint"] != after["heldout"]["fingerprint"]


def test_no_heldout_set_adds_no_key_material(tmp_path):
    assert heldout_key(METHODS["vfs"].config(), _pipe(tmp_path)) == {}


def test_an_image_layout_is_refused(tmp_path):
    (tmp_path / "held").mkdir()
    cfg = METHODS["byol"].config.model_validate({"val": {"dataset": "held"}})
    with pytest.raises(ConfigError, match="val.dataset"):
        heldout_key(cfg, _pipe(tmp_path, layout="image_folder"))
