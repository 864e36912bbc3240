"""``correlearn reproduce list | NAME`` in-process: the shipped table, a hash mismatch, full runs."""

import argparse
import json

import pytest
import torch
import yaml

from app.cli import main
from app.reproduce import TABLE
from correlearn.checkpoints import export_state, file_sha256, write_checkpoint_file
from correlearn.models import build_backbone
from correlearn.releases import load_releases


@pytest.fixture(scope="module")
def env(tmp_path_factory, make_davis):
    """A VFS-format file of a tiny ResNet, a one-sequence DAVIS folder and a table naming both."""
    tmp = tmp_path_factory.mktemp("reproduce")
    torch.manual_seed(0)
    state = build_backbone("resnet_test").export_state_dict()
    ckpt = write_checkpoint_file(export_state(state, "vfs"), tmp / "tiny_vfs-0000.pth")
    root = make_davis(tmp / "davis", seqs=("rollerblade",), n=4)
    entry = {
        "name": "tiny_vfs",
        "file": ckpt.name,
        "sha256": file_sha256(ckpt),
        "format": "vfs",
        "backbone": "resnet_test",
        "protocol": "davis",
        "preset": "vfs_resnet",
        "dataset": "DAVIS",
        "split": "first frames",
        "published": {"JF_mean": 61.3, "F_mean": 58.2},
        "source": "made up for the test",
    }
    wrong = {**entry, "name": "tiny_wrong", "sha256": None, "sha256_prefix": "0123abcd"}
    table = tmp / "releases.yaml"
    table.write_text(yaml.safe_dump({"releases": [entry, wrong]}))
    return tmp, ckpt, root, table


@pytest.fixture
def cli(env, monkeypatch, capsys):
    monkeypatch.setenv("CORRELEARN_HOME", str(env[0] / "home"))
    monkeypatch.chdir(env[0])

    def run(*args):
        rc = main([str(a) for a in args])
        out = capsys.readouterr()
        return rc, out.out, out.err

    return run


def test_list_prints_every_release_with_its_numbers_and_source(cli):
    rc, out, _ = cli("reproduce", "list")
    assert rc == 0
    table = load_releases(TABLE)
    assert out.strip().splitlines()[-1] == f"{len(table)} release(s) in {TABLE}"
    for r in table.values():
        head = next(line for line in out.splitlines() if line.startswith(f"{r.name}  "))
        assert f"{r.backbone}  {r.protocol}" in head and f"{r.dataset} {r.split}" in head
        block = out.split(head, 1)[1]
        published = ", ".join(f"{k} {v:.1f}" for k, v in r.published.items())
        assert block.splitlines()[1] == f"    published: {published}"
        assert f"    source: {r.source}" in block


def test_an_unknown_name_or_a_missing_file_is_one_line(cli, env):
    rc, _, err = cli("reproduce", "nope", "--file", env[1], "--root", env[2])
    assert rc == 2 and len(err.strip().splitlines()) == 1
    assert err.startswith(f"error: {TABLE}: no release 'nope'; known: vfs_r18_k400, ")
    rc, _, err = cli("reproduce", "vfs_r18_k400", "--root", env[2])
    assert (
        rc == 2 and err.strip() == "error: --file, --root: both required to reproduce vfs_r18_k400"
    )


def test_a_bad_table_is_one_line_naming_the_entry_and_key(cli, env, tmp_path):
    entries = yaml.safe_load(env[3].read_text())["releases"]
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"releases": [entries[0], {**entries[1], "format": "vfs2"}]}))
    rc, _, err = cli("reproduce", "list", "--table", bad)
    assert rc == 2 and len(err.strip().splitlines()) == 1
    assert err.startswith(f"error: {bad}: tiny_wrong.format: unknown format 'vfs2'; known: ")


def test_a_hash_mismatch_is_refused_before_any_work(cli, env, tmp_path, monkeypatch):
    tmp, ckpt, root, table = env
    monkeypatch.setenv("CORRELEARN_HOME", str(tmp_path / "fresh"))
    rc, out, err = cli("reproduce", "tiny_wrong", "--table", table, "--file", ckpt, "--root", root)
    assert rc == 2 and out == ""
    assert err.strip() == (
        f"error: {ckpt}: sha256 {file_sha256(ckpt)} does not match release tiny_wrong "
        "(expected 0123abcd...)"
    )
    assert not (tmp_path / "fresh").exists()  # no workspace, store or MLflow run was made


def test_reproduce_imports_evaluates_and_prints_ours_against_published(cli, env):
    tmp, ckpt, root, table = env
    rc, out, err = cli("reproduce", "tiny_vfs", "--table", table, "--file", ckpt, "--root", root,
                       "--set", "params.short_side=64", "--json")  # fmt: skip
    assert rc == 0, err
    res = json.loads(out.strip().splitlines()[-1])
    assert "format: vfs (as given)" in out and res["stage"] == "eval_label_propagation"
    assert res["sha256"] == file_sha256(ckpt) and res["release"] == "tiny_vfs"
    assert f"{ckpt}: matches release tiny_vfs (sha256)" in out
    artifact = tmp / "home/artifacts/eval_label_propagation" / res["key"]
    ours = json.loads((artifact / "metrics.json").read_text())
    manifest = json.loads((artifact / "manifest.json").read_text())
    assert manifest["config"]["preset"] == "vfs_resnet"  # the release's preset, not auto
    for metric, published in (("JF_mean", 61.3), ("F_mean", 58.2)):
        mine = 100 * ours[metric]
        row = res["metrics"][metric]
        assert row["ours"] == pytest.approx(mine) and row["published"] == published
        assert row["difference"] == pytest.approx(mine - published)
        assert f"| {metric} | {mine:.1f} | {published:.1f} | {mine - published:+.1f} |" in out
    run_id = res["mlflow_run_id"]
    assert run_id and f"mlflow run: {run_id}  http" in out and f"/runs/{run_id}" in out


def test_the_shipped_crw_entry_runs_on_a_file_in_crws_layout(cli, env, tmp_path):
    """``crw_r18_k400`` as shipped: a random ResNet-18 saved the way ajabri/videowalk's train.py
    saves CRW (``model`` -> ``encoder.model.*`` beside the ``selfsim_fc`` head) is imported as
    ``crw`` and evaluated with ``crw_resnet``; no hash is published, so none is checked."""
    torch.manual_seed(0)
    state = build_backbone("resnet18").export_state_dict()
    model = {f"encoder.model.{k}": v for k, v in state.items()}
    model |= {"selfsim_fc.0.weight": torch.randn(128, 512), "selfsim_fc.0.bias": torch.zeros(128)}
    ckpt = tmp_path / "pretrained.pth"
    torch.save({"model": model, "epoch": 24, "args": argparse.Namespace(temp=0.05)}, ckpt)
    rc, out, err = cli("reproduce", "crw_r18_k400", "--file", ckpt, "--root", env[2],
                       "--set", "params.short_side=64", "--json")  # fmt: skip
    assert rc == 0, err
    assert f"note: release crw_r18_k400 publishes no hash; {ckpt} is not checked" in out
    assert "format: crw (as given)" in out
    res = json.loads(out.strip().splitlines()[-1])
    assert res["release"] == "crw_r18_k400" and res["sha256"] is None
    artifact = env[0] / "home/artifacts/eval_label_propagation" / res["key"]
    manifest = json.loads((artifact / "manifest.json").read_text())
    lp = manifest["metadata"]["label_propagation"]
    assert manifest["config"]["preset"] == manifest["metadata"]["preset"] == "crw_resnet"
    assert (lp["padding_mode"], lp["temperature"], lp["context"]) == ("reflect", 0.05, "crw")
    assert manifest["metadata"]["backbone"] == "resnet18" and lp["short_side"] == 64
    published = load_releases(TABLE)["crw_r18_k400"].published
    assert list(res["metrics"]) == list(published) and "J_decay" in published
    for metric, row in res["metrics"].items():
        assert row["published"] == published[metric] and row["ours"] is not None
