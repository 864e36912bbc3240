"""The tracking checkpoint: its backbone, the head files round trip, ``head: none``, no head."""

import json

import pytest
import torch

from correlearn.config import ConfigError
from correlearn.eval.object_tracking import SiamHead
from correlearn.eval.tracking_checkpoint import (
    HEAD_FILE,
    HEAD_INFO,
    link_backbone,
    load_tracking_backbone,
    res5_features,
    tracking_head,
    write_head,
)
from correlearn.models import build_backbone
from correlearn.models.io import BACKBONE_FILE, BACKBONE_JSON, write_backbone_json


def test_trained_head_round_trips_and_its_sizes_win(tmp_path):
    torch.manual_seed(0)
    head = SiamHead(6, 4, True, 0.01)
    info = {"in_channels": 6, "channels": 4, "out_scale": 0.01, "exemplar_size": 32, "steps": 3}
    write_head(head, info, tmp_path)
    assert json.loads((tmp_path / HEAD_INFO).read_text()) == info
    params = {"exemplar_size": 120, "out_scale": 0.001, "instance_size": 255}
    back, used = tracking_head(tmp_path, "trained", params, 6, "cpu")
    assert used == {"exemplar_size": 32, "out_scale": 0.01, "instance_size": 255}
    assert params["exemplar_size"] == 120  # the config's parameters are not modified
    for a, b in zip(head.state_dict().values(), back.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    plain, used = tracking_head(tmp_path, "none", params, 6, "cpu")
    assert not plain.convs and plain.out_scale == 0.001 and used == params


def test_a_checkpoint_without_head_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="has no head.pt; run train_siamfc_head"):
        tracking_head(tmp_path, "trained", {"out_scale": 0.001}, 6, "cpu")
    assert not (tmp_path / HEAD_FILE).exists()


def test_link_backbone_puts_both_backbone_files_next_to_the_head(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    dst.mkdir()
    (src / BACKBONE_FILE).write_bytes(b"weights")
    (src / BACKBONE_JSON).write_text("{}")
    link_backbone(src, dst)
    assert (dst / BACKBONE_FILE).read_bytes() == b"weights" and (dst / BACKBONE_JSON).is_file()


@pytest.mark.parametrize(
    ("name", "channels", "stride"), [("resnet_test", 512, 8), ("vit_test_patch16", 64, 16)]
)
def test_the_tracking_backbone_asks_the_model_for_its_layer(tmp_path, name, channels, stride):
    """A ResNet runs dilated (res5 at stride 8); a ViT gives its patch tokens."""
    torch.manual_seed(0)
    torch.save(build_backbone(name).export_state_dict(), tmp_path / BACKBONE_FILE)
    write_backbone_json(tmp_path, name, {}, "random_init")
    backbone, meta = load_tracking_backbone(tmp_path, "cpu")
    assert meta == {"backbone": name, "channels": channels, "total_stride": stride}
    assert res5_features(backbone)(torch.randn(1, 3, 64, 64)).shape == (
        1,
        channels,
        64 // stride,
        64 // stride,
    )
