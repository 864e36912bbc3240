"""``correlearn eval pose|parts|svm|tracking|finetune`` on the generated fixtures, in-process."""

import json

import pytest
import torch

from app.cli import main
from app.cli_checkpoints import PROTOCOLS
from correlearn.models import build_backbone
from tests.eval.fixtures import make_jhmdb, make_vip, make_voc07
from tests.eval.fixtures_tracking import make_class_folders, make_got10k, make_otb


@pytest.fixture(scope="module")
def tmp(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli_eval")
    torch.manual_seed(0)
    torch.save(build_backbone("resnet_test").export_state_dict(), tmp / "r.pt")
    return tmp


@pytest.fixture
def cli(tmp, monkeypatch, capsys):
    monkeypatch.setenv("CORRELEARN_HOME", str(tmp / "home"))
    monkeypatch.chdir(tmp)

    def run(*args):
        rc = main([str(a) for a in args])
        out = capsys.readouterr()
        return rc, out.out, out.err

    return run


def _eval(cli, tmp, protocol, root, *extra):
    rc, out, err = cli("eval", protocol, "--checkpoint", tmp / "r.pt", "--root", root, *extra,
                       "--json")  # fmt: skip
    assert rc == 0, err
    return json.loads(out.strip().splitlines()[-1]), out


def test_every_protocol_is_wired_to_its_stage_and_layout():
    assert PROTOCOLS["pose"] == ("eval_pose", "jhmdb")
    assert PROTOCOLS["parts"] == ("eval_parts", "vip")
    assert PROTOCOLS["svm"] == ("eval_svm", "voc07")
    assert PROTOCOLS["tracking"] == ("eval_tracking", "otb")
    assert PROTOCOLS["finetune"] == ("eval_finetune", "class_folders")


def test_eval_pose(cli, tmp):
    make_jhmdb(tmp / "jhmdb", n=4)
    res, out = _eval(cli, tmp, "pose", tmp / "jhmdb", "--set", "image_size=64")
    assert res["stage"] == "eval_pose" and 0 <= res["metrics"]["PCK_0.1"] <= 100
    assert "PCK_0.2:" in out


def test_eval_parts(cli, tmp):
    make_vip(tmp / "vip", n=4)
    res, _ = _eval(cli, tmp, "parts", tmp / "vip", "--set", "image_size=64")
    assert res["stage"] == "eval_parts" and 0 <= res["metrics"]["mIoU"] <= 100


def test_eval_svm(cli, tmp):
    make_voc07(tmp / "voc", per_seq=2)
    sets = ["short_side=73", "image_size=64", "costs=[1.0]", "k_values=[1]", "samples=1"]
    res, _ = _eval(cli, tmp, "svm", tmp / "voc", *sum((["--set", s] for s in sets), []))
    assert res["stage"] == "eval_svm" and 0 <= res["metrics"]["mAP"] <= 100


def test_eval_tracking_trains_the_head_then_tracks_and_caches(cli, tmp):
    make_otb(tmp / "otb", n=4, size=(96, 160))
    make_got10k(tmp / "got", n=5)
    sets = ["params.instance_size=64", "params.response_size=5",
            "train_siamfc_head.exemplar_size=32", "train_siamfc_head.instance_size=64",
            "train_siamfc_head.batch_size=2", "train_siamfc_head.max_steps=2"]  # fmt: skip
    args = ["--head-root", tmp / "got", *sum((["--set", s] for s in sets), [])]
    res, out = _eval(cli, tmp, "tracking", tmp / "otb", *args)
    assert res["stage"] == "eval_tracking" and res["checkpoint"]["stage"] == "train_siamfc_head"
    assert "| copy the first box |" in out and "| bear |" in out
    again, out = _eval(cli, tmp, "tracking", tmp / "otb", *args)
    assert again["cache_hit"] and again["metrics"] == res["metrics"]
    assert "[cache hit] train_siamfc_head" in out


def test_eval_tracking_without_a_head_training_set_is_one_line(cli, tmp):
    if not (tmp / "otb").exists():
        make_otb(tmp / "otb", n=4, size=(96, 160))
    rc, _, err = cli("eval", "tracking", "--checkpoint", tmp / "r.pt", "--root", tmp / "otb")
    assert (
        rc == 2
        and len(err.strip().splitlines()) == 1
        and "pass --head-root DIR" in err
        and "--set head=none" in err
    )
    res, _ = _eval(cli, tmp, "tracking", tmp / "otb", "--set", "head=none",
                   "--set", "params.exemplar_size=32", "--set", "params.instance_size=64",
                   "--set", "params.response_size=5")  # fmt: skip
    assert res["checkpoint"]["stage"] == "import_checkpoint"


def test_eval_finetune(cli, tmp):
    make_class_folders(tmp / "cls", per_class=4)
    sets = ["max_steps=2", "hparams.batch_size=4", "hparams.train_size=32", "hparams.test_size=32"]
    res, out = _eval(cli, tmp, "finetune", tmp / "cls", *sum((["--set", s] for s in sets), []))
    assert res["stage"] == "eval_finetune" and 0 <= res["metrics"]["top1"] <= 100
    assert "top5:" in out
