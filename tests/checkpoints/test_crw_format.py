"""CRW's release layout (ajabri/videowalk ``pretrained.pth``): ``model`` -> ``encoder.model.*``.

A synthetic file with the reference code's module names is detected as ``crw`` (and as nothing
else), every ResNet-18 weight lands on its torchvision name, and the imported backbone under the
``crw_resnet`` preset computes what CRW's test-time encoder computes with those weights.
"""

import argparse
import re

import pytest
import torch
import torch.nn.functional as F

from correlearn.checkpoints import CheckpointError, import_file
from correlearn.checkpoints.formats import fitting_formats
from correlearn.eval.dense_setup import dense_setup
from correlearn.models.io import BACKBONE_FILE, write_backbone_json
from tests.checkpoints.reference_nets import CRW, randomize_

X = torch.randn(2, 3, 64, 80, generator=torch.Generator().manual_seed(1))
HEAD = ["selfsim_fc.0.weight", "selfsim_fc.0.bias"]


@pytest.fixture(scope="module")
def ref() -> CRW:
    return randomize_(CRW())


def _train_checkpoint(model: dict) -> dict:
    """What ``code/train.py`` ``save_model_checkpoint`` writes."""
    return {
        "model": model,
        "optimizer": {"state": {}, "param_groups": [{"lr": 1e-4, "params": [0, 1]}]},
        "lr_scheduler": {"milestones": {20: 1}, "gamma": 0.3},
        "epoch": 24,
        "args": argparse.Namespace(temp=0.05, dropout=0.1, model_type="scratch"),
    }


def _save(tmp_path, obj, name="pretrained.pth"):
    torch.save(obj, tmp_path / name)
    return tmp_path / name


def test_release_layout_is_detected_as_crw_only(ref):
    sd = ref.state_dict()
    assert "encoder.model.conv1.weight" in sd and "encoder.model.layer4.1.bn2.running_var" in sd
    assert not any(".fc." in k for k in sd) and HEAD[0] in sd
    assert [f.name for f in fitting_formats(_train_checkpoint(sd))] == ["crw"]
    assert [f.name for f in fitting_formats(sd)] == ["crw"]  # the bare model state dict too


def test_every_backbone_weight_is_mapped_and_the_head_ignored(tmp_path, ref):
    sd = ref.state_dict()
    imp = import_file(_save(tmp_path, _train_checkpoint(sd)))
    assert (imp.format, imp.detected, imp.name, imp.kwargs) == ("crw", True, "resnet18", {})
    assert imp.source == "file['model']['encoder.model.*']" and imp.ignored == HEAD
    cov = imp.coverage
    assert cov.loaded == cov.total == 120 and not cov.unexpected and not cov.filled
    got = imp.backbone.export_state_dict()
    assert len(got) == len(sd) - len(HEAD)
    for k, v in got.items():
        assert torch.equal(v, sd[f"encoder.model.{k}"]), k


def test_sequential_wrapped_convs_are_renamed_as_test_py_does(tmp_path, ref):
    """``code/test.py``: a key holding ``conv1.1.weight``/``conv2.1.weight`` drops the ``.1``."""
    sd = ref.state_dict()
    wrapped = {re.sub(r"(conv[12])\.weight$", r"\1.1.weight", k): v for k, v in sd.items()}
    assert {"encoder.model.conv1.1.weight", "encoder.model.layer3.0.conv2.1.weight"} <= set(wrapped)
    assert [f.name for f in fitting_formats({"model": wrapped})] == ["crw"]
    imp = import_file(_save(tmp_path, _train_checkpoint(wrapped)))
    assert imp.format == "crw" and imp.coverage.loaded == imp.coverage.total
    for k, v in imp.backbone.export_state_dict().items():
        assert torch.equal(v, sd[f"encoder.model.{k}"]), k


def test_crw_resnet_features_are_crw_test_time_features(tmp_path, ref):
    """``auto`` picks ``crw_resnet`` for an imported CRW file: reflect padding, res4 at stride 8,
    L2-normalised, as ``test.py`` (``--remove-layers layer4``) computes them."""
    imp = import_file(_save(tmp_path, _train_checkpoint(ref.state_dict())))
    folder = tmp_path / "artifact"
    folder.mkdir()
    torch.save(imp.backbone.export_state_dict(), folder / BACKBONE_FILE)
    write_backbone_json(folder, imp.name, imp.kwargs, f"import:{imp.format}")
    dense = dense_setup(folder, "auto", None, {}, "cpu")
    assert dense.meta["preset"] == "crw_resnet" and dense.lp.padding_mode == "reflect"
    net = CRW()
    net.load_state_dict(ref.state_dict())
    enc = net.encoder.model
    enc.modify(remove_layers=["layer4"])  # the test-time encoder
    with torch.no_grad():
        want = F.normalize(enc.eval()(X), dim=1)
        got = dense.feature_fn(X)
    assert got.shape == want.shape == (2, 256, 8, 10)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
    zeros = dense_setup(folder, "vfs_resnet", None, {}, "cpu").feature_fn(X)
    assert not torch.allclose(zeros, want, atol=1e-3)  # zero padding is another network


def test_a_file_without_layer4_is_refused(tmp_path, ref):
    sd = {k: v for k, v in ref.state_dict().items() if ".layer4." not in k}
    with pytest.raises(CheckpointError, match=r"first missing: layer4\.0\.conv1\.weight"):
        import_file(_save(tmp_path, _train_checkpoint(sd)))
