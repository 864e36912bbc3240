"""The backbone records: one per registered name, asked instead of the name everywhere."""

import re
from pathlib import Path

import pytest

from correlearn.models import BACKBONE_INFO, BACKBONES, backbone_info, build_backbone
from correlearn.models.info import FeatureLayer

REPO = Path(__file__).resolve().parents[2]

# A branch on a backbone's name: ``name.startswith("resnet")``, ``"vit" in name``...
NAME_GUESS = re.compile(
    r"""startswith\(\s*\(?\s*f?["'](resnet|vit|deit|convnext|swin)"""
    r"""|["'](resnet|vit)["']\s+(not\s+)?in\s"""
)


def test_every_registered_backbone_has_a_record():
    assert set(BACKBONE_INFO) == set(BACKBONES)


@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_the_record_by_name_is_what_the_built_module_says(name):
    assert build_backbone(name).info == backbone_info(name)


def test_the_records_hold_layers_batchnorm_presets_and_options():
    resnet, vit = backbone_info("resnet18"), backbone_info("vit_small_patch8")
    assert resnet.family == "resnet" and resnet.has_batchnorm
    assert [(f.name, f.stride) for f in resnet.feature_layers] == [
        ("res2", 4),
        ("res3", 8),
        ("res4", 16),
        ("res5", 32),
    ]
    assert resnet.default_preset == "vfs_resnet" and "strides" in resnet.options
    assert vit.family == "vit" and not vit.has_batchnorm
    assert vit.feature_layers == (FeatureLayer("last", 8),)
    assert vit.default_preset == "dino_vit" and "pos_embed" in vit.options
    assert backbone_info("vit_base_patch16").feature_layers[0].stride == 16
    # a ResNet offers a choice of dense maps; a ViT only its last block
    assert resnet.dense_layer("res4") == "res4" and vit.dense_layer("res4") is None


def test_a_built_resnet_reports_its_own_strides():
    net = build_backbone("resnet_test", strides=(1, 2, 1, 1))
    assert [f.stride for f in net.info.feature_layers] == [4, 8, 8, 8]
    assert net.info.family == "resnet"


def test_an_unknown_backbone_is_a_one_line_error_listing_the_known_ones():
    with pytest.raises(ValueError) as err:
        backbone_info("convnext_tiny")
    msg = str(err.value)
    assert "\n" not in msg and "'convnext_tiny'" in msg
    assert all(name in msg for name in BACKBONES)


def test_no_code_branches_on_a_backbone_name_prefix():
    found = []
    for top in ("correlearn", "stages", "flows", "app", "bench"):
        for path in sorted((REPO / top).rglob("*.py")):
            for i, line in enumerate(path.read_text().splitlines(), 1):
                if NAME_GUESS.search(line):
                    found.append(f"{path.relative_to(REPO)}:{i}: {line.strip()}")
    assert not found, "ask correlearn.models.backbone_info(name), not the name:\n" + "\n".join(
        found
    )


def test_the_name_guess_pattern_bites():
    for guess in (
        'spec["backbone"].startswith("resnet")',
        "name.startswith(('vit', 'deit'))",
        'if "vit" in name:',
    ):
        assert NAME_GUESS.search(guess), guess
    assert not NAME_GUESS.search('info.family == "vit"')
