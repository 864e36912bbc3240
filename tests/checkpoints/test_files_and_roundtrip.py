"""Bad files get one clear line and add nothing to the store; import -> export -> import is exact."""

import os
import pickle

import pytest
import torch
import torchvision
from torchvision.models.resnet import BasicBlock

from app.cli import main
from app.cli_checkpoints import FORMAT_NAMES
from correlearn.checkpoints import FORMATS, CheckpointError, export_state, import_file
from correlearn.models import build_backbone
from tests.checkpoints.reference_nets import RefViT, randomize_


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > pwned.txt",))


def _resnet_sd(seed=0):
    torch.manual_seed(seed)
    return build_backbone("resnet_test").export_state_dict()


BAD = {
    "not_a_state_dict": (lambda p: torch.save([1, 2, 3], p), "no known checkpoint format (a list"),
    "no_tensors": (lambda p: torch.save({"epoch": 3}, p), "no known checkpoint format"),
    "malicious_pickle": (
        lambda p: torch.save({"model": Evil()}, p),
        "refused: the pickle asks for",
    ),
    "raw_pickle": (lambda p: p.write_bytes(pickle.dumps(Evil())), "refused"),
    "truncated": (
        lambda p: (torch.save(_resnet_sd(), p), p.write_bytes(p.read_bytes()[:5000])),
        "truncated or corrupt",
    ),
    "wrong_architecture": (
        lambda p: torch.save(torchvision.models.ResNet(BasicBlock, [3, 4, 6, 3]).state_dict(), p),
        "(3, 4, 6, 3) blocks per stage, not a registered backbone",
    ),
    "partial_backbone": (
        lambda p: torch.save({k: v for k, v in _resnet_sd().items() if "layer4" not in k}, p),
        "weights; first missing: layer4.0.conv1.weight",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_file_is_one_line_and_nothing_is_stored(tmp_path, monkeypatch, capsys, case):
    monkeypatch.setenv("CORRELEARN_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    write, expected = BAD[case]
    path = tmp_path / f"{case}.pth"
    write(path)
    assert main(["import", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {path}: ") and expected in err[0], err
    arts = tmp_path / "home" / "artifacts"
    assert not any(arts.rglob("*")) and not (tmp_path / "pwned.txt").exists()


def test_forced_backbone_of_another_shape_is_refused(tmp_path):
    torch.save(_resnet_sd(), tmp_path / "r.pth")
    with pytest.raises(CheckpointError, match=r"not a resnet18: layer1\.0\.conv1\.weight|covers"):
        import_file(tmp_path / "r.pth", backbone="resnet18")


def test_a_vit_file_as_a_resnet_format_is_refused(tmp_path):
    torch.save({"state_dict": RefViT(grid=4).state_dict()}, tmp_path / "v.pth")
    with pytest.raises(CheckpointError, match="no openselfsup backbone weights|covers 0"):
        import_file(tmp_path / "v.pth", fmt="openselfsup")


def test_cli_format_names_match_the_registry():
    assert FORMAT_NAMES == tuple(FORMATS)


ROUNDTRIPS = [(f, "vit" if f in ("timm", "mae") else "resnet") for f in FORMATS] + [("moco", "vit")]


@pytest.mark.parametrize("fmt, arch", ROUNDTRIPS)
def test_import_export_import_is_exact(tmp_path, fmt, arch):
    if arch == "vit":
        src = randomize_(RefViT(grid=4)).state_dict()
    else:
        src = _resnet_sd(seed=3)
        src = {
            k: v + 0.01 * torch.randn_like(v) if v.is_floating_point() else v
            for k, v in src.items()
        }
    torch.save(src, tmp_path / "src.pth")
    first = import_file(tmp_path / "src.pth").backbone.export_state_dict()
    torch.save(export_state(first, fmt), tmp_path / f"out-{fmt}.pth")
    again = import_file(tmp_path / f"out-{fmt}.pth")
    assert again.format == fmt and again.detected
    second = again.backbone.export_state_dict()
    assert list(second) == list(first)
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert all(torch.equal(first[k], src[k]) for k in src if k in first)


def test_export_of_a_vit_as_a_resnet_format_is_refused():
    sd = RefViT(grid=4).state_dict()
    with pytest.raises(CheckpointError, match="vfs holds resnet backbones, not a vit"):
        export_state(sd, "vfs")
