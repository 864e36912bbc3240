"""The preset of a checkpoint and the dense set-up of the propagation protocols."""

from typing import get_args

import pytest
import torch

from app.cli_checkpoints import PRESETS as CLI_PRESETS
from correlearn.checkpoints.formats import FORMATS
from correlearn.eval.dense_setup import METHOD_PRESETS, Preset, choose_preset, dense_setup
from correlearn.eval.label_prop_config import PRESETS
from correlearn.eval.protocol_presets import PROTOCOL_PROPAGATION, PROTOCOL_STAGE
from correlearn.models import BACKBONE_INFO, build_backbone
from correlearn.models.io import BACKBONE_FILE, write_backbone_json
from correlearn.pretrain import METHODS


def test_choose_preset_follows_the_checkpoint_unless_given():
    assert choose_preset("auto", {"backbone": "resnet18"}) == "vfs_resnet"
    assert choose_preset("auto", {"backbone": "resnet18", "method": "import:crw"}) == "crw_resnet"
    assert choose_preset("auto", {"backbone": "resnet18", "method": "import:vfs"}) == "vfs_resnet"
    assert (
        choose_preset("auto", {"backbone": "vit_small_patch16", "method": "siammae"})
        == "siammae_vit"
    )
    assert choose_preset("auto", {"backbone": "vit_small_patch16", "method": "cim"}) == "dino_vit"
    # a random init is scored with the protocol of the checkpoint it stands beside
    assert choose_preset("siammae_vit", {"backbone": "vit_small_patch16"}) == "siammae_vit"
    # a method's preset that does not suit the backbone gives way to the backbone's default
    assert choose_preset("auto", {"backbone": "resnet18", "method": "siammae"}) == "vfs_resnet"


def test_auto_on_an_unregistered_backbone_is_an_error_not_a_guess():
    with pytest.raises(ValueError, match="unknown backbone 'convnext_tiny'; known: "):
        choose_preset("auto", {"backbone": "convnext_tiny", "method": "byol"})


def test_every_method_preset_names_a_method_and_a_preset_of_a_backbone_family():
    family_presets = {p for info in BACKBONE_INFO.values() for p in info.lp_presets}
    assert family_presets == set(PRESETS)
    for method, preset in METHOD_PRESETS.items():
        fmt = method.removeprefix("import:")
        assert method in METHODS or (method != fmt and fmt in FORMATS), method
        assert preset in family_presets, (method, preset)


def test_protocol_then_params_override_the_preset_and_resnets_get_its_strides(tmp_path):
    torch.manual_seed(0)
    torch.save(build_backbone("resnet_test").export_state_dict(), tmp_path / BACKBONE_FILE)
    write_backbone_json(tmp_path, "resnet_test", {}, "random_init")
    dense = dense_setup(tmp_path, "auto", "pose", {"context_frames": 1, "topk": 4}, "cpu")
    assert dense.lp.context_frames == 1 and dense.lp.topk == 4 and dense.lp.radius == 12
    assert dense.lp.short_side is None  # the pose protocol resizes the frames itself
    assert dense.meta["preset"] == "vfs_resnet" and dense.meta["backbone"] == "resnet_test"
    assert dense.meta["label_propagation"]["topk"] == 4 and dense.device == torch.device("cpu")
    feats = dense.feature_fn(torch.randn(1, 3, 64, 64))
    # res4 with strides (1, 2, 1, 1): stride 8, unit norm over channels
    assert feats.shape[-2:] == (8, 8)
    assert torch.allclose(feats.norm(dim=1), torch.ones(1, 8, 8), atol=1e-4)


def test_each_preset_takes_its_references_pose_and_parts_settings(tmp_path):
    """VFS: its DAVIS test_cfg (20 frames, k 10, T 0.07, radius 12); crw_resnet: CRW's DAVIS
    command (T 0.05); dino_vit: CRW's test defaults; siammae_vit: CropMAE's (JHMDB k 7, VIP k 10,
    radius 20, T 0.7); no preset forces 1 frame."""
    torch.save(build_backbone("vit_test_patch16").export_state_dict(), tmp_path / BACKBONE_FILE)
    write_backbone_json(tmp_path, "vit_test_patch16", {}, "siammae")
    got = {}
    for preset in ("vfs_resnet", "crw_resnet", "dino_vit", "siammae_vit"):
        for protocol in ("pose", "parts"):
            lp = dense_setup(tmp_path, preset, protocol, {}, "cpu").lp
            got[preset, protocol] = (lp.context_frames, lp.topk, lp.radius, lp.temperature)
    assert got["vfs_resnet", "pose"] == got["vfs_resnet", "parts"] == (20, 10, 12, 0.07)
    assert got["crw_resnet", "pose"] == got["crw_resnet", "parts"] == (20, 10, 12, 0.05)
    assert got["dino_vit", "pose"] == got["dino_vit", "parts"] == (20, 10, 12, 0.07)
    assert got["siammae_vit", "pose"] == (20, 7, 20, 0.7)
    assert got["siammae_vit", "parts"] == (20, 10, 20, 0.7)


def test_every_preset_is_listed_wherever_presets_are():
    names = {"auto", *PRESETS}
    assert set(get_args(Preset)) == set(CLI_PRESETS) == names
    for table in (PROTOCOL_PROPAGATION, PROTOCOL_STAGE):
        assert all(set(per_preset) == set(PRESETS) for per_preset in table.values())
