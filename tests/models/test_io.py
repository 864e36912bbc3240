"""Loading an exported backbone refuses weights that cannot be scored."""

import pytest
import torch

from correlearn.models import build_backbone
from correlearn.models.io import (
    BACKBONE_FILE,
    BackboneLoadError,
    load_backbone,
    write_backbone_json,
)


def test_a_stored_backbone_with_inf_weights_is_refused(tmp_path):
    state = build_backbone("resnet_test").export_state_dict()
    torch.save(state, tmp_path / BACKBONE_FILE)
    write_backbone_json(tmp_path, "resnet_test", {}, "byol")
    assert load_backbone(tmp_path) is not None
    state["fc.bias" if "fc.bias" in state else "conv1.weight"].view(-1)[0] = float("inf")
    torch.save(state, tmp_path / BACKBONE_FILE)
    with pytest.raises(BackboneLoadError, match="tensors hold NaN or Inf"):
        load_backbone(tmp_path)
