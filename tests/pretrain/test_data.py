"""The pre-training data kinds: BYOL's reduced-size decode switch keeps old keys at its default and
gives the same crops (to a few grey levels) as the full decode, from the same random draws."""

from pathlib import Path

import numpy as np
import torch

from correlearn.config import key_material
from correlearn.methods.byol import BYOLConfig
from correlearn.pipeline import Pipeline
from correlearn.pretrain import METHODS
from correlearn.pretrain.configs import PretrainImageConfig
from correlearn.workspace import get_workspace
from stages import STAGES


def test_the_decode_switch_is_in_the_key_only_when_set():
    assert "decode" not in key_material(BYOLConfig())
    assert key_material(BYOLConfig(decode="reduced"))["decode"] == "reduced"
    assert "decode" not in key_material(PretrainImageConfig())["method"]


def test_reduced_decode_crops_match_the_full_decode(tmp_path, make_davis):
    root = make_davis(tmp_path / "davis", n=3, masks=False)
    ws = get_workspace(tmp_path / "home")
    ws.artifacts.mkdir(parents=True)
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(
        f"datasets:\n  d: {{root: {root}, layout: davis}}\nimage_shards: {{dataset: d}}\n"
    )
    shards = Pipeline(cfg, STAGES, ws).run_stage("image_shards")
    spec = METHODS["byol"]
    batches = {}
    for decode in ("full", "reduced"):
        method = {"backbone": "resnet_test", "image_size": 64, "decode": decode}
        config = PretrainImageConfig.model_validate({"method": method, "train": {"batch_size": 4}})
        data = spec.data.open({"shards": Path(shards.path)}, config)
        rng, gen = np.random.default_rng(0), torch.Generator().manual_seed(0)
        batches[decode] = spec.batch(data, config, 0, rng, gen)
    full, reduced = batches["full"]["view1"], batches["reduced"]["view1"]
    assert full.shape == reduced.shape == (4, 3, 64, 64)
    diff = (full - reduced).abs().mean().item()  # normalised units: 1.0 is about 57 grey levels
    assert 0.0 < diff < 0.1, diff  # decoded at reduced size (not bit-equal), yet the same crops
